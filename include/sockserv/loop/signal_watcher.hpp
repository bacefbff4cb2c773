// SPDX-License-Identifier: BSL-1.0
// sockserv/loop/signal_watcher.hpp — signals delivered as events: the
// callback runs on the loop's thread, between other callbacks, so it may do
// anything a callback may (stop the loop, re-read a file, write to clients).
//
//   sockserv::signal_watcher term;
//   term.start(loop, SIGTERM, [&](int) { loop.request_shutdown(); });
//
// How: a self-pipe. The process-wide handler notes the signal and writes one
// byte to the pipe of the loop that watches it; the loop reads the pipe and
// runs the signal's watchers. Not signalfd, although Linux has it: signalfd
// only works while the signal is blocked in every thread, and a blocked mask
// is inherited by every child the daemon forks or spawns (a helper that
// cannot be stopped with SIGTERM), and by threads a library starts later.
// The handler is installed with SA_RESTART while any watcher watches the
// signal, and the previous disposition comes back when the last one stops.
// A signal is watched by one loop at a time; several watchers of that loop
// may watch it. Deliveries of the same signal that arrive before the loop
// runs merge into one callback, as the kernel merges pending signals.
#pragma once

#include "../detail/signal_disposition.hpp"
#include "../detail/text.hpp"
#include "../error.hpp"
#include "loop.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <unistd.h>

namespace sockserv {

namespace detail {
#if defined(NSIG)
inline constexpr int signal_limit = NSIG;
#elif defined(_NSIG)
inline constexpr int signal_limit = _NSIG;
#else
inline constexpr int signal_limit = 65;
#endif

// Process-wide, since signal dispositions are: per signal, the pipe to
// write to, whether one arrived, and what to restore.
struct signal_routes {
  std::atomic<int> pipe_fd[signal_limit];
  std::atomic<bool> arrived[signal_limit];
  loop* owner[signal_limit];
  unsigned watchers[signal_limit];
  struct sigaction previous[signal_limit];
  std::atomic<pid_t> process;  // a forked child's handler writes to no pipe
};
inline signal_routes& routes() noexcept {
  static signal_routes table{};  // zero-initialised: no guard, no constructor
  return table;
}

extern "C" inline void sockserv_signal_handler(int signo) {
  signal_routes& r = routes();
  if (signo <= 0 || signo >= signal_limit) return;
  const int saved = errno;
  r.arrived[signo].store(true);
  const int fd = r.pipe_fd[signo].load();
  if (fd >= 0 && ::getpid() == r.process.load()) {
    const unsigned char byte = static_cast<unsigned char>(signo);
    ssize_t rc;
    do rc = ::write(fd, &byte, 1);
    while (rc == -1 && errno == EINTR);  // EAGAIN: the pipe is full, the loop will look anyway
  }
  errno = saved;
}
}  // namespace detail

class signal_watcher {
 public:
  using callback_type = callback<void(int)>;

  signal_watcher() noexcept = default;
  signal_watcher(const signal_watcher&) = delete;
  signal_watcher& operator=(const signal_watcher&) = delete;
  ~signal_watcher() { stop(); }

  // Fails for an invalid signal (or SIGKILL/SIGSTOP), or one already
  // watched by another loop.
  result start(loop& owner, int signo, callback_type on_signal) noexcept {
    stop();
    detail::signal_routes& r = detail::routes();
    if (signo <= 0 || signo >= detail::signal_limit || signo == SIGKILL || signo == SIGSTOP)
      return failure("signal_watcher: cannot watch signal ", signo, "", EINVAL);
    if (r.owner[signo] != nullptr && r.owner[signo] != &owner)
      return failure("signal_watcher: signal ", signo, " is watched by another loop", EBUSY);
    result ready = open_pipe(owner);
    if (!ready) return ready;
    if (r.watchers[signo] == 0) {
      r.owner[signo] = &owner;
      r.pipe_fd[signo].store(owner.signal_pipe_.write_fd());
      r.process.store(::getpid());
      struct sigaction action {};
      action.sa_handler = &detail::sockserv_signal_handler;
      sigfillset(&action.sa_mask);  // one handler at a time: errno and the pipe stay consistent
      action.sa_flags = SA_RESTART | (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
      if (::sigaction(signo, &action, &r.previous[signo]) == -1) {
        r.owner[signo] = nullptr;
        r.pipe_fd[signo].store(-1);
        return failure("signal_watcher: sigaction(", signo, ")", errno);
      }
    }
    ++r.watchers[signo];
    loop_ = &owner;
    signo_ = signo;
    on_signal_ = on_signal;
    next_ = owner.signal_watchers_;
    owner.signal_watchers_ = this;
    return {};
  }

  void stop() noexcept {
    if (loop_ == nullptr) return;
    for (signal_watcher** link = &loop_->signal_watchers_; *link != nullptr; link = &(*link)->next_)
      if (*link == this) {
        *link = next_;
        break;
      }
    detail::signal_routes& r = detail::routes();
    if (--r.watchers[signo_] == 0) {
      detail::restore_disposition(signo_, r.previous[signo_], &detail::sockserv_signal_handler, nullptr);
      r.pipe_fd[signo_].store(-1);
      r.owner[signo_] = nullptr;
    }
    loop_ = nullptr;
    next_ = nullptr;
  }

  bool active() const noexcept { return loop_ != nullptr; }
  int signal_number() const noexcept { return signo_; }

 private:
  static result failure(const char* before, int signo, const char* after, int code) noexcept {
    char message[result::message_capacity];
    detail::text_builder(message, sizeof message).add(before).add_signed(signo).add(after);
    return result::from_errno(code, message);
  }

  // The loop's signal pipe, opened with the first watcher.
  static result open_pipe(loop& owner) noexcept {
    if (owner.signal_input_.active()) return {};
    result made = owner.signal_pipe_.open();
    if (made)
      made = owner.signal_input_.start(owner, owner.signal_pipe_.read_fd(), true, false,
                                       [&owner](readiness) { deliver(owner); });
    return made;
  }

  // On the loop's thread: every signal noted since the last look, to each
  // of its watchers (one may stop itself or others meanwhile).
  static void deliver(loop& owner) {
    owner.signal_pipe_.drain();
    detail::signal_routes& r = detail::routes();
    for (int signo = 1; signo < detail::signal_limit; ++signo) {
      if (r.owner[signo] != &owner || !r.arrived[signo].exchange(false)) continue;
      for (signal_watcher* w = owner.signal_watchers_; w != nullptr;) {
        signal_watcher* next = w->next_;
        if (w->signo_ == signo) {
          const callback_type notify = w->on_signal_;  // a copy: it may restart its watcher
          notify(signo);
        }
        w = next;
      }
    }
  }

  loop* loop_ = nullptr;
  int signo_ = 0;
  callback_type on_signal_;
  signal_watcher* next_ = nullptr;
};

}  // namespace sockserv
