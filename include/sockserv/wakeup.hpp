// SPDX-License-Identifier: BSL-1.0
// sockserv/wakeup.hpp — a self-pipe that wakes a thread blocked in poll().
//
// notify() is async-signal-safe (one write() of one byte), so a signal
// handler may use it; the pipe is non-blocking at both ends so a burst of
// notifications never blocks the notifier and draining never blocks the loop.
#pragma once

#include "detail/syscall.hpp"
#include "error.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace sockserv {

class wakeup_pipe {
 public:
  wakeup_pipe() noexcept = default;
  wakeup_pipe(const wakeup_pipe&) = delete;
  wakeup_pipe& operator=(const wakeup_pipe&) = delete;
  ~wakeup_pipe() { close(); }

  result open() noexcept {
    if (read_fd_ >= 0) return {};
    int ends[2];
#if defined(__linux__) && defined(O_CLOEXEC)
    if (::pipe2(ends, O_CLOEXEC | O_NONBLOCK) == -1) return result::from_errno(errno, "pipe");
#else
    if (::pipe(ends) == -1) return result::from_errno(errno, "pipe");
    for (int fd : ends) {
      detail::set_cloexec(fd);
      detail::set_nonblocking(fd, true);
    }
#endif
    read_fd_ = ends[0];
    write_fd_ = ends[1];
    return {};
  }

  void notify() const noexcept {
    if (write_fd_ < 0) return;
    const char byte = 1;
    int saved = errno;  // a signal handler must leave errno as it found it
    ssize_t rc;
    do rc = ::write(write_fd_, &byte, 1);
    while (rc == -1 && errno == EINTR);  // EAGAIN: pipe full, a wake-up is pending anyway
    errno = saved;
  }

  void drain() const noexcept {
    char sink[64];
    while (::read(read_fd_, sink, sizeof sink) > 0) {
    }
  }

  int read_fd() const noexcept { return read_fd_; }
  int write_fd() const noexcept { return write_fd_; }

  void close() noexcept {
    detail::close_descriptor(read_fd_);
    detail::close_descriptor(write_fd_);
    read_fd_ = write_fd_ = -1;
  }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace sockserv
