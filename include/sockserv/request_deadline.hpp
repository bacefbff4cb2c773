// SPDX-License-Identifier: BSL-1.0
// sockserv/request_deadline.hpp — a blocking request's whole deadline
// (stream_request_handler::request_timeout), enforced on the connection.
//
// rfile and wfile check the deadline themselves. A handler that calls
// recv()/send() on request.fd directly is reached another way: at the
// deadline its connection is shut down both ways, so that a blocked raw call
// returns (end of input, EPIPE) and every later one fails at once. Who does
// the shutting down depends on where the request runs:
//   - synchronous and threading: one watchdog thread for the whole process,
//     started when a request first arms a deadline (64 KiB of stack, every
//     signal blocked). It sleeps on a condition variable until the earliest
//     deadline; nothing polls.
//   - forking: the request's child arms an interval timer (SIGALRM, ITIMER_REAL,
//     which counts elapsed time and is not inherited across fork). The
//     child serves this one request and exits, so its SIGALRM is free.
// Either way the connection is shut down through a duplicate the deadline
// owns, closed only after it is disarmed: a handler that closed request.fd,
// and a number that another socket reused, are never touched.
//
// The policy running a request opens a request_scope around it (on the
// thread, or in the child, that runs it); the handler's setup() arms it.
// A request whose deadline passed — seen by rfile/wfile, or cut off here —
// is counted once in stats().timed_out when the scope closes.
#pragma once

#include "detail/pthread.hpp"
#include "detail/syscall.hpp"
#include "server_base.hpp"
#include "socket.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace sockserv::detail {

// The descriptor a request's deadline shuts down: a stream request's
// connection; a datagram request has none of its own.
inline int connection_fd_of(const connection& request) noexcept { return request.fd; }
inline int connection_fd_of(const datagram_request&) noexcept { return -1; }

class request_scope {
 public:
  enum class enforcement { watchdog_thread, alarm_signal };

  // connection_fd: the server's own descriptor of the request (open at
  // least until the handler's setup() has run).
  request_scope(server_base& server, int connection_fd, enforcement how = enforcement::watchdog_thread) noexcept
      : server_(server), connection_fd_(connection_fd), how_(how), outer_(current()) {
    current() = this;
  }
  request_scope(const request_scope&) = delete;
  request_scope& operator=(const request_scope&) = delete;
  ~request_scope() {
    if (disarm_ != nullptr) disarm_(*this);
    if (timed_out_ || fired_) server_.count(server_event::timed_out);
    current() = outer_;
  }

  // stream_request_handler::setup(): the request must be over by the
  // monotonic time deadline_ms. Without a scope (a handler run outside the
  // pipeline) only rfile and wfile enforce it.
  static void arm_current(std::int64_t deadline_ms) noexcept {
    request_scope* scope = current();
    if (scope == nullptr || scope->disarm_ != nullptr || scope->connection_fd_ < 0) return;
    scope->watched_fd_ = ::fcntl(scope->connection_fd_, F_DUPFD_CLOEXEC, 0);
    if (scope->watched_fd_ < 0) return;  // out of descriptors: rfile/wfile still enforce it
    scope->deadline_ms_ = deadline_ms;
    const bool armed = scope->how_ == enforcement::alarm_signal ? arm_alarm(*scope) : arm_watchdog(*scope);
    if (!armed) close_descriptor(scope->watched_fd_);
  }

  // stream_request_handler::finish(): rfile or wfile failed with ETIMEDOUT.
  static void note_timed_out(server_base& server) noexcept {
    if (request_scope* scope = current())
      scope->timed_out_ = true;
    else
      server.count(server_event::timed_out);
  }

 private:
  static request_scope*& current() noexcept {
    static thread_local request_scope* scope = nullptr;
    return scope;
  }

  // ---- the watchdog thread (synchronous, threading) ----------------------
  // Plain pthread objects, constant-initialised and never destroyed: the
  // thread may still wait on them while static destructors run at exit.
  struct watchdog {
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t changed = PTHREAD_COND_INITIALIZER;  // set up again for the monotonic clock
    pid_t started_in = 0;  // the process whose thread this is (0: none yet)
    request_scope* armed = nullptr;  // intrusive list of armed scopes
  };
  // glibc carves a thread's static TLS out of its stack: 16 KiB, enough for
  // watch() itself, crashed a test binary with Catch2's TLS under qemu-arm.
  // Untouched pages of it cost no memory.
  static constexpr std::size_t watchdog_stack_size = 64 * 1024;

  static watchdog& the_watchdog() noexcept {
    static watchdog dog;  // constant-initialised, trivially destructible: no guard, no atexit
    return dog;
  }

  static bool arm_watchdog(request_scope& scope) noexcept {
    watchdog& dog = the_watchdog();
    pthread_mutex_lock(&dog.lock);
    bool running = dog.started_in == ::getpid();
    if (!running) {  // first use in this process (a forked child has no thread, and its list is its parent's)
      dog.armed = nullptr;
      pthread_condattr_t attributes;
      pthread_condattr_init(&attributes);
      pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
      pthread_cond_init(&dog.changed, &attributes);
      pthread_condattr_destroy(&attributes);
      pthread_t thread;
      running = start_library_thread(thread, &watch, &dog, watchdog_stack_size) == 0;
      if (running) {
        pthread_detach(thread);
        dog.started_in = ::getpid();
      }
    }
    if (running) {
      scope.next_ = dog.armed;
      scope.previous_ = nullptr;
      if (dog.armed != nullptr) dog.armed->previous_ = &scope;
      dog.armed = &scope;
      scope.disarm_ = &disarm_watchdog;
      pthread_cond_signal(&dog.changed);
    }
    pthread_mutex_unlock(&dog.lock);
    return running;
  }

  // Once this returns the watchdog no longer sees the scope: it shuts down
  // only under the lock, and only scopes still listed.
  static void disarm_watchdog(request_scope& scope) noexcept {
    watchdog& dog = the_watchdog();
    pthread_mutex_lock(&dog.lock);
    if (scope.listed()) unlist(dog, scope);
    pthread_mutex_unlock(&dog.lock);
    close_descriptor(scope.watched_fd_);
    scope.disarm_ = nullptr;
  }

  bool listed() const noexcept { return disarm_ != nullptr && !fired_; }
  static void unlist(watchdog& dog, request_scope& scope) noexcept {
    if (scope.previous_ != nullptr)
      scope.previous_->next_ = scope.next_;
    else
      dog.armed = scope.next_;
    if (scope.next_ != nullptr) scope.next_->previous_ = scope.previous_;
  }

  static void* watch(void* argument) {
    watchdog& dog = *static_cast<watchdog*>(argument);
    pthread_mutex_lock(&dog.lock);
    for (;;) {
      const std::int64_t now = monotonic_ms();
      std::int64_t earliest = -1;
      for (request_scope* scope = dog.armed; scope != nullptr;) {
        request_scope* next = scope->next_;
        if (scope->deadline_ms_ <= now) {
          ::shutdown(scope->watched_fd_, SHUT_RDWR);
          scope->fired_ = true;
          unlist(dog, *scope);
        } else if (earliest < 0 || scope->deadline_ms_ < earliest) {
          earliest = scope->deadline_ms_;
        }
        scope = next;
      }
      if (earliest < 0) {
        pthread_cond_wait(&dog.changed, &dog.lock);
      } else {
        timespec until{static_cast<time_t>(earliest / 1000), static_cast<long>(earliest % 1000) * 1000000L};
        pthread_cond_timedwait(&dog.changed, &dog.lock, &until);
      }
    }
  }

  // ---- the alarm (a forked request child) --------------------------------
  static std::atomic<int>& alarm_fd() noexcept {
    static std::atomic<int> fd{-1};
    return fd;
  }
  static std::atomic<bool>& alarm_fired() noexcept {
    static std::atomic<bool> fired{false};
    return fired;
  }
  static void on_alarm(int) noexcept {
    const int saved = errno;
    ::shutdown(alarm_fd().load(), SHUT_RDWR);  // async-signal-safe
    alarm_fired().store(true);
    errno = saved;
  }

  static bool arm_alarm(request_scope& scope) noexcept {
    std::int64_t left = scope.deadline_ms_ - monotonic_ms();
    if (left < 1) left = 1;
    alarm_fd().store(scope.watched_fd_);
    alarm_fired().store(false);
    struct sigaction action {};
    action.sa_handler = &on_alarm;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGALRM, &action, nullptr) == -1) return false;
    sigset_t alarm_only;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &alarm_only, nullptr);
    itimerval when{};
    when.it_value.tv_sec = static_cast<time_t>(left / 1000);
    when.it_value.tv_usec = static_cast<suseconds_t>((left % 1000) * 1000);
    if (::setitimer(ITIMER_REAL, &when, nullptr) == -1) return false;
    scope.disarm_ = &disarm_alarm;
    return true;
  }

  static void disarm_alarm(request_scope& scope) noexcept {
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    scope.fired_ = alarm_fired().load();
    alarm_fd().store(-1);
    close_descriptor(scope.watched_fd_);
    scope.disarm_ = nullptr;
  }

  server_base& server_;
  const int connection_fd_;
  const enforcement how_;
  request_scope* const outer_;
  void (*disarm_)(request_scope&) noexcept = nullptr;  // set while armed
  int watched_fd_ = -1;                                // the duplicate shut down at the deadline
  std::int64_t deadline_ms_ = 0;
  request_scope* next_ = nullptr;  // in the watchdog's list
  request_scope* previous_ = nullptr;
  bool fired_ = false;  // cut off by the watchdog or the alarm
  bool timed_out_ = false;  // rfile/wfile saw the deadline pass
};

}  // namespace sockserv::detail
