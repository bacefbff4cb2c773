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
    unsigned seen = state_.load();
    do
      if (seen & held) return false;
    while (!state_.compare_exchange_weak(seen, (seen & ~flags) | held));
    owner_.store(pthread_self());
    return true;
  }

  // No thread serves any more: a new generation begins, and every
  // wait_until_released() wakes.
  void release() noexcept {
    owner_.store(pthread_t{});
    unsigned seen = state_.load();
    while (!state_.compare_exchange_weak(seen, (seen & ~flags) + generation_step)) {
    }
    if (seen & waiters) futex(futex_wake_private, INT_MAX);
  }

  // True when the calling thread is the one serving.
  bool held_by_caller() const noexcept {
    return (state_.load() & held) != 0 && pthread_equal(owner_.load(), pthread_self());
  }

  // Which serving run is on now; taken before asking the loop to stop.
  unsigned snapshot() const noexcept { return state_.load(); }

  // Returns once the run seen by snapshot() has ended (at once if none was
  // on). Comparing generations, not just "is anyone serving", keeps a loop
  // restarted at once (a reload) from being mistaken for the one asked to
  // stop.
  void wait_until_released(unsigned seen_before) noexcept {
    if (!(seen_before & held)) return;
    const unsigned generation = seen_before & ~flags;
    unsigned seen = state_.load();
    while ((seen & held) && (seen & ~flags) == generation) {
      if (!(seen & waiters) && !state_.compare_exchange_weak(seen, seen | waiters)) continue;
      futex(futex_wait_private, static_cast<int>(seen | waiters));  // returns at once if the word changed
      seen = state_.load();
    }
  }

 private:
  static constexpr unsigned held = 1;
  static constexpr unsigned waiters = 2;
  static constexpr unsigned flags = held | waiters;
  static constexpr unsigned generation_step = 4;
  // The kernel's ABI (linux/futex.h, which musl's headers do not bring).
  static constexpr int futex_wait_private = 0 | 128;
  static constexpr int futex_wake_private = 1 | 128;

  void futex(int operation, int value) noexcept {
#if defined(SYS_futex)
    ::syscall(SYS_futex, reinterpret_cast<unsigned*>(&state_), operation, value, nullptr, nullptr, 0);
#else  // 32-bit ABIs born with a 64-bit time_t have only futex_time64
    ::syscall(SYS_futex_time64, reinterpret_cast<unsigned*>(&state_), operation, value, nullptr, nullptr, 0);
#endif
  }

  static_assert(sizeof(std::atomic<unsigned>) == sizeof(unsigned), "the futex word is the atomic's int");
  // bit 0: a thread serves; bit 1: someone waits for it to stop; the rest:
  // the generation, one per serving run.
  std::atomic<unsigned> state_{0};
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
    ++generation_;
    released_.notify_all();
  }
  bool held_by_caller() noexcept {
    lock_guard hold(lock_);
    return serving_ && pthread_equal(owner_, pthread_self());
  }
  unsigned snapshot() noexcept {
    lock_guard hold(lock_);
    return serving_ ? generation_ * 2 + 1 : 0;
  }
  void wait_until_released(unsigned seen_before) noexcept {
    lock_guard hold(lock_);
    if (!(seen_before & 1)) return;
    while (serving_ && generation_ * 2 + 1 == seen_before) released_.wait(lock_);
  }

 private:
  mutex lock_;
  condition released_;
  bool serving_ = false;
  unsigned generation_ = 0;
  pthread_t owner_{};
#endif
};

}  // namespace sockserv::detail
