// SPDX-License-Identifier: BSL-1.0
// sockserv/poller/select.hpp — the select() demultiplexer: the oldest and
// most portable. fd_set holds descriptors below FD_SETSIZE only; a larger
// one is refused with a clear error instead of writing past the set.
#pragma once

#include "../detail/text.hpp"
#include "../error.hpp"
#include "readiness.hpp"

#include <cerrno>
#include <cstddef>
#include <sys/select.h>
#include <sys/time.h>

// musl's FD_SET/FD_CLR/FD_ISSET divide the (int) descriptor by an unsigned
// long, which -Wsign-conversion rejects in every static musl build. The
// descriptors here are checked to be in [0, FD_SETSIZE) first.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"

namespace sockserv {

template <std::size_t Capacity>
class select_poller {
 public:
  static constexpr const char* name = "select";

  result open() noexcept { return {}; }
  void close() noexcept {
    FD_ZERO(&read_set_);
    FD_ZERO(&write_set_);
    highest_ = -1;
  }

  result add(int fd, poll_token token, bool read, bool write) noexcept {
    if (fd < 0 || fd >= FD_SETSIZE) {
      char message[result::message_capacity];
      detail::text_builder(message, sizeof message)
          .add("select: descriptor ")
          .add_signed(fd)
          .add(" is at or above FD_SETSIZE (")
          .add_signed(FD_SETSIZE)
          .add("); use the poll or epoll poller");
      return result::from_errno(EMFILE, message);
    }
    token_of_fd_[fd] = token;
    if (fd > highest_) highest_ = fd;
    return modify(fd, token, read, write);
  }

  result modify(int fd, poll_token, bool read, bool write) noexcept {
    if (fd < 0 || fd >= FD_SETSIZE) return result::from_errno(EBADF, "select: not watched");
    if (read) FD_SET(fd, &read_set_); else FD_CLR(fd, &read_set_);
    if (write) FD_SET(fd, &write_set_); else FD_CLR(fd, &write_set_);
    return {};
  }

  void remove(int fd, poll_token) noexcept {
    if (fd < 0 || fd >= FD_SETSIZE) return;
    FD_CLR(fd, &read_set_);
    FD_CLR(fd, &write_set_);
    // A closed descriptor's bit in wait()'s copies is skipped by checking
    // the live sets again before reporting.
  }

  template <class OnReady>
  int wait(int timeout_ms, OnReady&& on_ready) {
    fd_set readable = read_set_, writable = write_set_;
    timeval limit{timeout_ms / 1000, static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
    int ready = ::select(highest_ + 1, &readable, &writable, nullptr, timeout_ms < 0 ? nullptr : &limit);
    if (ready == -1) return errno == EINTR ? 0 : -1;
    for (int fd = 0, seen = 0; fd <= highest_ && seen < ready; ++fd) {
      readiness r;
      r.readable = FD_ISSET(fd, &readable) && FD_ISSET(fd, &read_set_);
      r.writable = FD_ISSET(fd, &writable) && FD_ISSET(fd, &write_set_);
      if (FD_ISSET(fd, &readable)) ++seen;
      if (FD_ISSET(fd, &writable)) ++seen;
      if (r.readable || r.writable) on_ready(token_of_fd_[fd], r);
    }
    return ready;
  }

 private:
  fd_set read_set_{};
  fd_set write_set_{};
  poll_token token_of_fd_[FD_SETSIZE] = {};
  int highest_ = -1;
};

}  // namespace sockserv

#pragma GCC diagnostic pop
