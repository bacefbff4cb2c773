// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/pthread.hpp — minimal RAII over pthread mutexes and
// condition variables. std::mutex would do, but std::condition_variable
// lives in libstdc++.so, which a static musl build does not have.
#pragma once

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <csignal>
#include <ctime>
#include <pthread.h>

namespace sockserv::detail {

class mutex {
 public:
  mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  ~mutex() { pthread_mutex_destroy(&handle_); }
  void lock() noexcept { pthread_mutex_lock(&handle_); }
  void unlock() noexcept { pthread_mutex_unlock(&handle_); }
  pthread_mutex_t* native() noexcept { return &handle_; }

 private:
  pthread_mutex_t handle_ = PTHREAD_MUTEX_INITIALIZER;
};

class lock_guard {
 public:
  explicit lock_guard(mutex& m) noexcept : mutex_(m) { mutex_.lock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;
  ~lock_guard() { mutex_.unlock(); }

 private:
  mutex& mutex_;
};

// Timed waits measure CLOCK_MONOTONIC, so a wall clock stepped back (NTP,
// an RTC set at boot) cannot stretch a deadline.
class condition {
 public:
  condition() noexcept {
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&handle_, &attributes);
    pthread_condattr_destroy(&attributes);
  }
  condition(const condition&) = delete;
  condition& operator=(const condition&) = delete;
  ~condition() { pthread_cond_destroy(&handle_); }
  // The caller holds m.
  void wait(mutex& m) noexcept { pthread_cond_wait(&handle_, m.native()); }
  // Waits at most until the monotonic time deadline_ms (monotonic_ms()'s
  // clock); false once that time has come.
  bool wait_until_ms(mutex& m, std::int64_t deadline_ms) noexcept {
    timespec until{static_cast<time_t>(deadline_ms / 1000), static_cast<long>(deadline_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(&handle_, m.native(), &until) != ETIMEDOUT;
  }
  void notify_one() noexcept { pthread_cond_signal(&handle_); }
  void notify_all() noexcept { pthread_cond_broadcast(&handle_); }

 private:
  pthread_cond_t handle_;
};

// Starts a thread of the library's own (a pool worker, the deadline
// watchdog) with a stack of at least `stack_size` bytes. It blocks every
// signal, so that SIGINT/SIGTERM handlers run on the application's threads
// (the ones that call request_shutdown()) — except the faults a thread
// raises itself: blocked, those would kill the process without running the
// application's crash handler. Returns pthread_create's error (0: started).
inline int start_library_thread(pthread_t& thread, void* (*run)(void*), void* argument,
                                std::size_t stack_size) noexcept {
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  const long minimum = PTHREAD_STACK_MIN;  // a sysconf() call on newer glibc
  const std::size_t floor = minimum > 0 ? static_cast<std::size_t>(minimum) : 16384;
  pthread_attr_setstacksize(&attributes, stack_size < floor ? floor : stack_size);
  sigset_t all, previous;
  sigfillset(&all);
  const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (int fault : faults) sigdelset(&all, fault);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const int rc = pthread_create(&thread, &attributes, run, argument);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_attr_destroy(&attributes);
  return rc;
}

}  // namespace sockserv::detail
