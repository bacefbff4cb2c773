// SPDX-License-Identifier: BSL-1.0
// sockserv/poller/poll.hpp — the poll() demultiplexer: portable POSIX, no
// descriptor limit, cost linear in the number of connections per wait.
#pragma once

#include "../error.hpp"
#include "readiness.hpp"

#include <cerrno>
#include <cstddef>
#include <poll.h>

namespace sockserv {

// Capacity: descriptors watched at once; tokens are below Capacity.
template <std::size_t Capacity>
class poll_poller {
 public:
  static constexpr const char* name = "poll";

  poll_poller() noexcept {
    for (auto& index : index_of_token_) index = none;
  }

  result open() noexcept { return {}; }
  void close() noexcept { count_ = 0; }

  result add(int fd, poll_token token, bool read, bool write) noexcept {
    // A full table may still hold entries removed since the last wait():
    // one of those is reused (revents cleared, so a wait() reporting right
    // now skips it).
    const std::size_t index = count_ < Capacity ? count_ : removed_entry();
    if (token >= Capacity || index == none) return result::from_errno(ENOSPC, "poll: too many descriptors");
    if (index == count_) ++count_;
    index_of_token_[token] = index;
    entries_[index] = pollfd{fd, events(read, write), 0};
    tokens_[index] = token;
    return {};
  }

  result modify(int, poll_token token, bool read, bool write) noexcept {
    if (token >= Capacity || index_of_token_[token] == none) return result::from_errno(ENOENT, "poll: not watched");
    entries_[index_of_token_[token]].events = events(read, write);
    return {};
  }

  // Only marks the entry: wait() may be walking the table right now. The
  // next wait() compacts it.
  void remove(int, poll_token token) noexcept {
    if (token >= Capacity || index_of_token_[token] == none) return;
    entries_[index_of_token_[token]].fd = -1;
    index_of_token_[token] = none;
    removed_ = true;
  }

  template <class OnReady>
  int wait(int timeout_ms, OnReady&& on_ready) {
    if (removed_) compact();
    int ready = ::poll(entries_, static_cast<nfds_t>(count_), timeout_ms);
    if (ready == -1) return errno == EINTR ? 0 : -1;
    const std::size_t watched = count_;  // handlers may add nothing, but be safe
    for (std::size_t i = 0, seen = 0; i < watched && seen < static_cast<std::size_t>(ready); ++i) {
      short got = entries_[i].revents;
      if (got == 0 || entries_[i].fd < 0) continue;
      ++seen;
      readiness r;
      r.readable = (got & POLLIN) != 0;
      r.writable = (got & POLLOUT) != 0;
      r.failed = (got & (POLLERR | POLLHUP | POLLNVAL)) != 0;
      on_ready(tokens_[i], r);
    }
    return ready;
  }

 private:
  static constexpr std::size_t none = static_cast<std::size_t>(-1);
  static short events(bool read, bool write) noexcept {
    return static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0));
  }

  std::size_t removed_entry() const noexcept {
    if (removed_)
      for (std::size_t i = 0; i < count_; ++i)
        if (entries_[i].fd < 0) return i;
    return none;
  }

  void compact() noexcept {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      if (entries_[i].fd < 0) continue;
      entries_[kept] = entries_[i];
      tokens_[kept] = tokens_[i];
      index_of_token_[tokens_[kept]] = kept;
      ++kept;
    }
    count_ = kept;
    removed_ = false;
  }

  pollfd entries_[Capacity];
  poll_token tokens_[Capacity];
  std::size_t index_of_token_[Capacity];
  std::size_t count_ = 0;
  bool removed_ = false;
};

}  // namespace sockserv
