// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/stop_ends_input.hpp — how shutdown() reaches the request a
// synchronous server is serving.
//
// Under `synchronous` the request runs inside serve_forever(): a handler
// waiting for a client that sends nothing (an idle keep-alive, a dead peer)
// would hold serve_forever() — and a SIGTERM — for as long as the client
// likes. So a stop ends the request's input: request_shutdown() shuts the
// connection down for reading (SHUT_RD). What the client has sent is still
// read; after it the handler sees end of input, and its replies still go
// out (SHUT_RD does not stop sending). serve_forever() then returns. On a
// unix stream socket the client's own sends fail from then on (EPIPE; TCP
// keeps taking them), as they would once the server closed.
//
// request_shutdown() is called from signal handlers and other threads, so
// it cannot look up "the connection now" under a lock, and a number it read
// could be closed and reused by another socket before its shutdown() lands.
// Hence one reserved descriptor number per server: while a request runs it
// refers to the request's connection (dup3 onto it), between requests to
// the server's wake-up pipe (shutdown() on a pipe fails with ENOTSOCK and
// does nothing). The number is never closed while the server lives, so the
// shutdown() always reaches the connection in flight or nothing. Cost: one
// descriptor per synchronous stream server, two dup3() per request.
// A server that could not reserve one (out of descriptors when it was
// built) serves as Python does: the request in flight holds the stop.
#pragma once

#include "syscall.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sockserv::detail {

class stop_ends_input {
 public:
  stop_ends_input() noexcept = default;
  stop_ends_input(const stop_ends_input&) = delete;
  stop_ends_input& operator=(const stop_ends_input&) = delete;
  ~stop_ends_input() {
    const int fd = reserved_.exchange(-1);
    close_descriptor(fd);
  }

  // Reserves the number, referring to `idle` (the wake-up pipe) for now:
  // done when the server is built, so that it is one of the server's own
  // descriptors, like the pipe. False if no descriptor could be had.
  bool reserve(int idle) noexcept {
    if (reserved_.load() >= 0) return true;
    const int fd = ::fcntl(idle, F_DUPFD_CLOEXEC, 3);  // never 0-2: stdio of a daemon started without it
    if (fd < 0) return false;
    reserved_.store(fd);
    return true;
  }

  // The request on `connection` starts. False without a reserved number
  // (the request then runs without it).
  bool begin(int connection) noexcept {
    const int fd = reserved_.load();
    return fd >= 0 && point(connection, fd);
  }

  // The request has ended: the number goes back to the wake-up pipe.
  void end(int idle) noexcept {
    const int fd = reserved_.load();
    if (fd >= 0) (void)point(idle, fd);
  }

  // request_shutdown(): async-signal-safe.
  // errno is kept: a signal handler must not change what the code it
  // interrupted is about to read (between requests this shutdown() fails
  // with ENOTSOCK).
  void cut() const noexcept {
    const int fd = reserved_.load();
    if (fd < 0) return;
    const int saved = errno;
    (void)::shutdown(fd, SHUT_RD);
    errno = saved;
  }

 private:
  static bool point(int from, int to) noexcept {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
    return ::dup3(from, to, O_CLOEXEC) == to;
#else
    if (::dup2(from, to) != to) return false;
    return ::fcntl(to, F_SETFD, FD_CLOEXEC) != -1;
#endif
  }

  std::atomic<int> reserved_{-1};
};

}  // namespace sockserv::detail
