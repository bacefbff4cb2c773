// SPDX-License-Identifier: BSL-1.0
// sockserv/handler_connection.hpp — what a stream handler's `request` is:
// the connection, whose `fd` is the handler's own descriptor of it.
//
// Why a copy: a handler may close request.fd itself — fclose(fdopen(
// request.fd, "r+")) is the usual way. If request.fd were the number the
// server goes on using, that number could be handed to another socket at
// once (a worker's or the event loop's accept(), a socket the handler opens
// next), and then wfile's buffered reply, the event loop's output, its
// poller and the server's shutdown and close would reach someone else's
// connection (or, under epoll, the slot would never hear from its client
// again). So the server keeps the descriptor it accepted — rfile, wfile,
// request.recv()/sendall(), the event loop's reads and writes, cancels and
// shutdown_request use that one — and request.fd is a duplicate lent to
// the handler for its lifetime, under every policy.
//
// Why lazily: the copy is made the first time the handler reads
// request.fd (or request.fileno()). A handler that only uses rfile/wfile,
// recv()/sendall() or the event loop's write() never costs a descriptor or
// a system call; one that does costs a dup() and an fstat() then, and an
// fstat() and a close() when it is gone. An event server with 10 000
// clients that never look at request.fd keeps 10 000 descriptors, not
// 20 000 (and a select() server does not reach FD_SETSIZE sooner).
//
// When the handler is gone the copy is closed only if its number still
// refers to the socket it was made for (the device and inode fstat() gave
// when it was made: no two open sockets share an inode); a number the
// handler closed, and that may be someone else's by now, is left alone.
#pragma once

#include "detail/syscall.hpp"
#include "socket.hpp"

#include <cstdint>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace sockserv {

// request.fd of a stream handler: converts to int, the handler's number.
// -1 (errno set, e.g. EMFILE) if no copy could be made; the next use tries
// again. Not copyable: copy the number (`int fd = request.fd;`, or
// `request.fd.get()` where no int is expected, as for printf's %d).
class handler_descriptor {
 public:
  handler_descriptor() noexcept = default;
  handler_descriptor(const handler_descriptor&) = delete;
  handler_descriptor& operator=(const handler_descriptor&) = delete;
  ~handler_descriptor() { reclaim(); }

  operator int() const noexcept { return get(); }
  int get() const noexcept {
    if (lent_ < 0 && owned_ >= 0) lend();
    return lent_;
  }

  // Lends from `owned` (the server's descriptor) from now on, ending an
  // earlier loan. -1: nothing to lend.
  void lend_from(int owned) noexcept {
    reclaim();
    owned_ = owned;
  }

  // The server's descriptor is about to close: no copy is made from now
  // on (a handler's destructor that reads request.fd gets -1); one made
  // already stays the handler's until reclaim().
  void orphan() noexcept { owned_ = -1; }

  // Closes the copy if it is still the one made for the handler (above).
  void reclaim() noexcept {
    if (lent_ >= 0 && still_lent()) detail::close_descriptor(lent_);
    lent_ = owned_ = -1;
  }

 private:
  void lend() const noexcept {
    const int copy = ::fcntl(owned_, F_DUPFD_CLOEXEC, 3);  // never 0-2: stdio of a daemon started without it
    if (copy < 0) return;
    struct stat made {};
    if (::fstat(copy, &made) != 0) {
      detail::close_descriptor(copy);
      return;
    }
    device_ = static_cast<std::uint64_t>(made.st_dev);
    inode_ = static_cast<std::uint64_t>(made.st_ino);
    lent_ = copy;
  }
  bool still_lent() const noexcept {
    struct stat now {};
    return ::fstat(lent_, &now) == 0 && static_cast<std::uint64_t>(now.st_dev) == device_ &&
           static_cast<std::uint64_t>(now.st_ino) == inode_;
  }

  int owned_ = -1;
  mutable int lent_ = -1;
  // 64-bit whatever _FILE_OFFSET_BITS says, so that every translation unit
  // agrees on the layout.
  mutable std::uint64_t device_ = 0;
  mutable std::uint64_t inode_ = 0;
};

// A stream handler's request. Its fd hides connection::fd (the server's
// number, which the connection's own recv()/sendall() and every server
// hook — verify_request, handle_error, shutdown_request — keep using).
struct handler_connection : connection {
  handler_descriptor fd;

  handler_connection() noexcept {}  // user-provided: not an aggregate in C++17 either
  handler_connection(const handler_connection&) = delete;
  handler_connection& operator=(const handler_connection&) = delete;
  // The server hands the handler its request (begin_request).
  handler_connection& operator=(const connection& accepted) noexcept {
    connection::operator=(accepted);
    fd.lend_from(accepted.fd);
    return *this;
  }

  int fileno() const noexcept { return fd; }

  // An int socket option (TCP_NODELAY, SO_KEEPALIVE, ...) set on the
  // connection without making the copy: what setsockopt() returns.
  int set_option(int level, int name, int value) const noexcept {
    return ::setsockopt(connection::fd, level, name, &value, sizeof value);
  }
};

namespace detail {
// What base_request_handler<Request>::request is.
template <class Request>
struct handler_request {
  using type = Request;
};
template <>
struct handler_request<connection> {
  using type = handler_connection;
};
}  // namespace detail

}  // namespace sockserv
