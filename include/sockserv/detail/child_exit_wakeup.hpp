// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/child_exit_wakeup.hpp — SIGCHLD as a byte on a server's
// wake-up pipe, for a forking server waiting for one of its children.
//
// With its child table full, a forking server waits in one poll() for "a
// child exited" and "shutdown()". No descriptor becomes readable when a
// child exits — pidfd_open() needs Linux 5.3, newer than many routers'
// kernels, and signalfd needs SIGCHLD blocked in every thread and in every
// child (see loop/signal_watcher.hpp) — so while a server waits, a SIGCHLD
// handler writes a byte to its wake-up pipe. The handler is installed when
// the first server starts waiting and the previous disposition comes back
// when the last one stops; meanwhile the application's own handler, if it
// had one, is called after ours, so its child bookkeeping goes on. Up to
// `slots` servers can wait at once; one more is told it is not subscribed
// and looks again every 10 ms instead. An application that lets the kernel
// reap its children (SIGCHLD ignored, or SA_NOCLDWAIT) loses that while a
// server waits: its children that exit meanwhile stay zombies until it
// reaps them (sockserv reaps only its own, by pid).
#pragma once

#include "signal_disposition.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

namespace sockserv::detail {

struct child_exit_routes {
  static constexpr std::size_t slots = 16;
  std::atomic<int> pipe_fd[slots];  // a subscriber's write descriptor + 1; 0: free
  std::atomic<pid_t> process;       // a forked child's handler writes to no pipe
  struct sigaction previous;        // stable while installed
  std::size_t subscribers;          // under lock
  pthread_mutex_t lock;
};
inline child_exit_routes& child_exit_table() noexcept {
  static child_exit_routes table{{}, {}, {}, 0, PTHREAD_MUTEX_INITIALIZER};  // constant-initialised: no guard
  return table;
}

extern "C" inline void sockserv_child_exit_handler(int signo, siginfo_t* info, void* context) {
  child_exit_routes& r = child_exit_table();
  const int saved = errno;
  if (::getpid() == r.process.load()) {
    const char byte = 1;
    for (std::atomic<int>& slot : r.pipe_fd) {
      const int fd = slot.load() - 1;  // stored +1, so that zero-initialised means free
      if (fd >= 0) (void)!::write(fd, &byte, 1);  // non-blocking; a full pipe has a wake-up pending
    }
  }
  const struct sigaction& before = r.previous;
  if (before.sa_flags & SA_SIGINFO) {
    if (before.sa_sigaction != nullptr) before.sa_sigaction(signo, info, context);
  } else if (before.sa_handler != SIG_DFL && before.sa_handler != SIG_IGN && before.sa_handler != nullptr) {
    before.sa_handler(signo);
  }
  errno = saved;
}

class child_exit_wakeup {
 public:
  child_exit_wakeup() noexcept = default;
  child_exit_wakeup(const child_exit_wakeup&) = delete;
  child_exit_wakeup& operator=(const child_exit_wakeup&) = delete;
  ~child_exit_wakeup() { unsubscribe(); }

  // From now on every SIGCHLD writes a byte to write_fd (non-blocking).
  // False if no slot is free or the handler could not be installed.
  bool subscribe(int write_fd) noexcept {
    if (slot_ >= 0 || write_fd < 0) return slot_ >= 0;
    child_exit_routes& r = child_exit_table();
    pthread_mutex_lock(&r.lock);
    for (std::size_t i = 0; i < child_exit_routes::slots; ++i) {
      if (r.pipe_fd[i].load() != 0) continue;
      if (r.subscribers == 0 && !install(r)) break;
      r.pipe_fd[i].store(write_fd + 1);
      ++r.subscribers;
      slot_ = static_cast<int>(i);
      break;
    }
    pthread_mutex_unlock(&r.lock);
    return slot_ >= 0;
  }

  void unsubscribe() noexcept {
    if (slot_ < 0) return;
    child_exit_routes& r = child_exit_table();
    pthread_mutex_lock(&r.lock);
    r.pipe_fd[slot_].store(0);
    if (--r.subscribers == 0) restore_disposition(SIGCHLD, r.previous, nullptr, &sockserv_child_exit_handler);
    pthread_mutex_unlock(&r.lock);
    slot_ = -1;
  }

  bool subscribed() const noexcept { return slot_ >= 0; }

 private:
  static bool install(child_exit_routes& r) noexcept {
    struct sigaction action {};
    action.sa_sigaction = &sockserv_child_exit_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigfillset(&action.sa_mask);
    r.process.store(::getpid());
    return ::sigaction(SIGCHLD, &action, &r.previous) == 0;
  }

  int slot_ = -1;
};

}  // namespace sockserv::detail
