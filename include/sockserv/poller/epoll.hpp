// SPDX-License-Identifier: BSL-1.0
// sockserv/poller/epoll.hpp — the epoll demultiplexer (Linux): the kernel
// keeps the interest set, so a wait costs what is ready, not what is open.
// Level-triggered, like poll and select, so the loop is the same for all.
#pragma once

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "readiness.hpp"

#include <cerrno>
#include <cstddef>
#include <sys/epoll.h>

namespace sockserv {

template <std::size_t Capacity>
class epoll_poller {
 public:
  static constexpr const char* name = "epoll";
  // Readiness reported per wait; more simply waits for the next turn.
  static constexpr std::size_t batch = 256;

  epoll_poller() noexcept = default;
  epoll_poller(const epoll_poller&) = delete;
  epoll_poller& operator=(const epoll_poller&) = delete;
  ~epoll_poller() { close(); }

  result open() noexcept {
    if (epoll_fd_ >= 0) return {};
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ == -1) return result::from_errno(errno, "epoll_create1");
    return {};
  }
  // The epoll descriptor: readable whenever a watched descriptor is ready,
  // which is how a host loop embeds this one.
  int fd() const noexcept { return epoll_fd_; }
  void close() noexcept {
    detail::close_descriptor(epoll_fd_);
    epoll_fd_ = -1;
  }

  result add(int fd, poll_token token, bool read, bool write) noexcept {
    return control(EPOLL_CTL_ADD, fd, token, read, write, "epoll_ctl add");
  }
  result modify(int fd, poll_token token, bool read, bool write) noexcept {
    return control(EPOLL_CTL_MOD, fd, token, read, write, "epoll_ctl modify");
  }
  void remove(int fd, poll_token) noexcept { ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

  template <class OnReady>
  int wait(int timeout_ms, OnReady&& on_ready) {
    int ready = ::epoll_wait(epoll_fd_, events_, static_cast<int>(batch), timeout_ms);
    if (ready == -1) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < ready; ++i) {
      readiness r;
      r.readable = (events_[i].events & EPOLLIN) != 0;
      r.writable = (events_[i].events & EPOLLOUT) != 0;
      r.failed = (events_[i].events & (EPOLLERR | EPOLLHUP)) != 0;
      on_ready(events_[i].data.u32, r);
    }
    return ready;
  }

 private:
  result control(int operation, int fd, poll_token token, bool read, bool write, const char* what) noexcept {
    epoll_event event{};
    event.events = (read ? EPOLLIN : 0u) | (write ? EPOLLOUT : 0u);
    event.data.u32 = token;
    if (::epoll_ctl(epoll_fd_, operation, fd, &event) == -1) return result::from_errno(errno, what);
    return {};
  }

  int epoll_fd_ = -1;
  epoll_event events_[batch];
};

}  // namespace sockserv
