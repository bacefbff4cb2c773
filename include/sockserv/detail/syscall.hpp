// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/syscall.hpp — thin wrappers over the socket system calls.
//
// Every descriptor is created close-on-exec, every send avoids SIGPIPE, and
// every call that a signal can interrupt is retried without losing or
// repeating bytes. Wrappers return -1 and leave errno set, like the calls.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

namespace sockserv::detail {

#ifdef MSG_NOSIGNAL
inline constexpr int no_sigpipe = MSG_NOSIGNAL;
#else
inline constexpr int no_sigpipe = 0;  // BSDs: SO_NOSIGPIPE is set per socket
#endif

template <class Call>
inline auto retry_on_eintr(Call call) -> decltype(call()) {
  decltype(call()) rc;
  do rc = call();
  while (rc == -1 && errno == EINTR);
  return rc;
}

inline void set_cloexec(int fd) noexcept { ::fcntl(fd, F_SETFD, FD_CLOEXEC); }

inline int set_nonblocking(int fd, bool on) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags == -1) return -1;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return ::fcntl(fd, F_SETFL, flags);
}

inline int open_socket(int family, int type) noexcept {
#ifdef SOCK_CLOEXEC
  int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
#else
  int fd = ::socket(family, type, 0);
  if (fd != -1) set_cloexec(fd);
#endif
#ifdef SO_NOSIGPIPE
  if (fd != -1) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif
  return fd;
}

// close() must not be retried on EINTR: on Linux the descriptor is gone.
inline void close_descriptor(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

// The accepted descriptor is blocking and close-on-exec whatever the
// listener's flags are (BSD accept() inherits O_NONBLOCK).
inline int accept_connection(int listener, sockaddr* address, socklen_t* length) noexcept {
#if defined(__linux__) && defined(SOCK_CLOEXEC)
  return retry_on_eintr([&] { return ::accept4(listener, address, length, SOCK_CLOEXEC); });
#else
  int fd = retry_on_eintr([&] { return ::accept(listener, address, length); });
  if (fd != -1) {
    set_cloexec(fd);
    set_nonblocking(fd, false);
  }
  return fd;
#endif
}

// Sends all of data, resuming after partial sends and signals. Returns the
// byte count, or -1 with errno set (bytes already sent are then lost to the
// caller, as with Python's sendall()).
inline std::ptrdiff_t send_all(int fd, const void* data, std::size_t size) noexcept {
  const char* next = static_cast<const char*>(data);
  std::size_t left = size;
  while (left > 0) {
    ssize_t n = ::send(fd, next, left, no_sigpipe);
    if (n == -1) {
      if (errno == EINTR) continue;
      return -1;
    }
    next += n;
    left -= static_cast<std::size_t>(n);
  }
  return static_cast<std::ptrdiff_t>(size);
}

inline std::int64_t monotonic_ms() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// Waits until fd is ready for `events` or the monotonic time deadline_ms
// comes; false with errno ETIMEDOUT (or poll's error) if it is not ready.
inline bool wait_until_ready(int fd, short events, std::int64_t deadline_ms) noexcept {
  for (;;) {
    const std::int64_t left = deadline_ms - monotonic_ms();
    if (left <= 0) break;
    pollfd watched{fd, events, 0};
    int rc = ::poll(&watched, 1, left > 2147483000 ? 2147483000 : static_cast<int>(left));
    if (rc > 0) return true;
    if (rc == -1 && errno != EINTR) return false;
  }
  errno = ETIMEDOUT;
  return false;
}

// send_all() that gives up (ETIMEDOUT) at the monotonic deadline_ms, even
// if the peer keeps taking a byte at a time.
inline std::ptrdiff_t send_all_until(int fd, const void* data, std::size_t size, std::int64_t deadline_ms) noexcept {
  const char* next = static_cast<const char*>(data);
  std::size_t left = size;
  while (left > 0) {
    if (!wait_until_ready(fd, POLLOUT, deadline_ms)) return -1;
    ssize_t n = ::send(fd, next, left, no_sigpipe | MSG_DONTWAIT);
    if (n == -1) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return -1;
    }
    next += n;
    left -= static_cast<std::size_t>(n);
  }
  return static_cast<std::ptrdiff_t>(size);
}

// Sleeps for `ms` milliseconds, resuming after signals.
inline void sleep_ms(int ms) noexcept {
  timespec left{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  while (::nanosleep(&left, &left) == -1 && errno == EINTR) {
  }
}

// Seconds (negative = forever) to a poll() timeout in milliseconds. NaN
// counts as forever, and anything beyond ~24 days is clamped: converting
// either to int would be undefined behaviour.
inline int to_poll_ms(double seconds) noexcept {
  if (!(seconds >= 0)) return -1;  // negative or NaN
  double ms = seconds * 1000.0;
  if (!(ms <= 2147483000.0)) return 2147483000;  // also +infinity
  int whole = static_cast<int>(ms);
  return (static_cast<double>(whole) < ms) ? whole + 1 : whole;  // round up: never spin
}

// poll() that survives EINTR while keeping the original deadline.
inline int poll_until(pollfd* fds, nfds_t count, int timeout_ms) noexcept {
  const std::int64_t deadline = timeout_ms < 0 ? 0 : monotonic_ms() + timeout_ms;
  for (;;) {
    int rc = ::poll(fds, count, timeout_ms);
    if (rc != -1 || errno != EINTR) return rc;
    if (timeout_ms >= 0) {
      std::int64_t left = deadline - monotonic_ms();
      timeout_ms = left > 0 ? static_cast<int>(left) : 0;
    }
  }
}

}  // namespace sockserv::detail
