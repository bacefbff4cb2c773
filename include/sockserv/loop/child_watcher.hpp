// SPDX-License-Identifier: BSL-1.0
// sockserv/loop/child_watcher.hpp — child processes with an exit callback.
//
//   sockserv::child_watcher helper;
//   const char* argv[] = {"/usr/sbin/helper", "--once", nullptr};
//   helper.spawn(loop, argv, [&](pid_t, int status) { ... WEXITSTATUS(status) ... });
//
// Each watcher reaps exactly its own pid (waitpid(pid), never waitpid(-1)),
// so the forking policy's children, and children nobody watches, keep their
// exit status for whoever waits for them. The watcher hears of exits
// through SIGCHLD (a signal_watcher of its own) and also looks once on the
// turn after it starts, so a child that exited before it was watched is
// reported too. The callback runs on the loop's thread, once.
#pragma once

#include "../detail/text.hpp"
#include "../error.hpp"
#include "loop.hpp"
#include "signal_watcher.hpp"
#include "timer.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace sockserv {

class child_watcher {
 public:
  using callback_type = callback<void(pid_t, int)>;  // the pid, and waitpid()'s status

  child_watcher() noexcept = default;
  child_watcher(const child_watcher&) = delete;
  child_watcher& operator=(const child_watcher&) = delete;
  ~child_watcher() { stop(); }

  // Starts argv[0] (searched in PATH when it has no '/') with argv and the
  // environment (this process's by default), with an empty signal mask and
  // default dispositions, and watches it.
  result spawn(loop& owner, const char* const argv[], callback_type on_exit,
               const char* const envp[] = nullptr) noexcept {
    stop();
    if (argv == nullptr || argv[0] == nullptr) return result::from_errno(EINVAL, "child_watcher: empty argv");
    // SIGCHLD is watched before the child exists: if it cannot be (another
    // loop watches it), nothing is started that nobody would reap.
    result watching = sigchld_.start(owner, SIGCHLD, [this](int) { look(); });
    if (!watching) return watching;
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv[0], nullptr, &attributes, const_cast<char* const*>(argv),
                            envp ? const_cast<char* const*>(envp) : environ);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) {
      sigchld_.stop();
      char message[result::message_capacity];
      detail::text_builder(message, sizeof message).add("spawn ").add(argv[0], 120);
      return result::from_errno(rc, message);
    }
    follow(owner, pid, on_exit);
    return {};
  }

  // Watches a child the caller forked itself.
  result watch(loop& owner, pid_t pid, callback_type on_exit) noexcept {
    stop();
    if (pid <= 0) return result::from_errno(EINVAL, "child_watcher: no such pid");
    result watching = sigchld_.start(owner, SIGCHLD, [this](int) { look(); });
    if (!watching) return watching;
    follow(owner, pid, on_exit);
    return {};
  }

  // Stops watching (the child, if still running, is left alone and still
  // needs reaping by somebody).
  void stop() noexcept {
    sigchld_.stop();
    first_look_.cancel();
    pid_ = -1;
  }

  bool active() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }

 private:
  // SIGCHLD is watched already; look once on the next turn too.
  void follow(loop& owner, pid_t pid, callback_type on_exit) noexcept {
    pid_ = pid;
    on_exit_ = on_exit;
    first_look_.bind(owner, [this] { look(); });
    first_look_.start(0);
  }

  void look() {
    if (pid_ <= 0) return;
    int status = 0;
    pid_t rc;
    do rc = ::waitpid(pid_, &status, WNOHANG);
    while (rc == -1 && errno == EINTR);
    if (rc == 0) return;  // still running
    const pid_t exited = pid_;
    // Called from a copy: the callback may spawn() again with another
    // callback, which replaces on_exit_ while it still runs.
    const callback_type report = on_exit_;
    stop();
    // ECHILD: somebody else reaped it; its status is gone.
    report(exited, rc == exited ? status : -1);
  }

  signal_watcher sigchld_;
  timer first_look_;
  pid_t pid_ = -1;
  callback_type on_exit_;
};

}  // namespace sockserv
