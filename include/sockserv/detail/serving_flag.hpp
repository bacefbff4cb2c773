// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/serving_flag.hpp — which thread runs serve_forever(), and
// a way for shutdown() to wait until none does.
//
// On Linux this is one atomic word and a futex: a server that never starts
// a thread then links no pthread mutex or condition variable, which in a
// static musl binary is about 3 KiB of a 32 KiB budget. Elsewhere it is a
// pthread mutex and condition variable.
#pragma once

#include "pthread.hpp"  // unconditionally: the single header inlines each header once

#include <atomic>
#include <pthread.h>

#if defined(__linux__)
#include <climits>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace sockserv::detail {

class serving_flag {
 public:
  serving_flag() noexcept = default;
  serving_flag(const serving_flag&) = delete;
  serving_flag& operator=(const serving_flag&) = delete;

#if defined(__linux__)
  // Marks the calling thread as the one serving; false if one already is.
  bool claim() noexcept {
    int free = 0;
    if (!state_.compare_exchange_strong(free, held)) return false;
    owner_.store(pthread_self());
    return true;
  }

  // No thread serves any more: wakes every wait_until_released().
  void release() noexcept {
    owner_.store(pthread_t{});
    if (state_.exchange(0) == held_with_waiters) futex(futex_wake_private, INT_MAX);
  }

  // True when the calling thread is the one serving.
  bool held_by_caller() const noexcept {
    return state_.load() != 0 && pthread_equal(owner_.load(), pthread_self());
  }

  // Returns once no thread serves (at once if none does).
  void wait_until_released() noexcept {
    int seen = state_.load();
    while (seen != 0) {
      if (seen == held && !state_.compare_exchange_weak(seen, held_with_waiters)) continue;
      futex(futex_wait_private, held_with_waiters);  // returns at once if the word changed
      seen = state_.load();
    }
  }

 private:
  static constexpr int held = 1;
  static constexpr int held_with_waiters = 2;
  // The kernel's ABI (linux/futex.h, which musl's headers do not bring).
  static constexpr int futex_wait_private = 0 | 128;
  static constexpr int futex_wake_private = 1 | 128;

  void futex(int operation, int value) noexcept {
#if defined(SYS_futex)
    ::syscall(SYS_futex, reinterpret_cast<int*>(&state_), operation, value, nullptr, nullptr, 0);
#else  // 32-bit ABIs born with a 64-bit time_t have only futex_time64
    ::syscall(SYS_futex_time64, reinterpret_cast<int*>(&state_), operation, value, nullptr, nullptr, 0);
#endif
  }

  static_assert(sizeof(std::atomic<int>) == sizeof(int), "the futex word is the atomic's int");
  std::atomic<int> state_{0};  // 0 free, held, held_with_waiters
  // pthread_t{} while free, so a thread that served before is not mistaken
  // for the one serving now.
  std::atomic<pthread_t> owner_{pthread_t{}};
#else
  bool claim() noexcept {
    lock_guard hold(lock_);
    if (serving_) return false;
    serving_ = true;
    owner_ = pthread_self();
    return true;
  }
  void release() noexcept {
    lock_guard hold(lock_);
    serving_ = false;
    released_.notify_all();
  }
  bool held_by_caller() noexcept {
    lock_guard hold(lock_);
    return serving_ && pthread_equal(owner_, pthread_self());
  }
  void wait_until_released() noexcept {
    lock_guard hold(lock_);
    while (serving_) released_.wait(lock_);
  }

 private:
  mutex lock_;
  condition released_;
  bool serving_ = false;
  pthread_t owner_{};
#endif
};

}  // namespace sockserv::detail
