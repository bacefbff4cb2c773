// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/signal_disposition.hpp — giving a signal back.
//
// sockserv installs a handler for a signal only while something of its own
// needs it (a signal_watcher, a forking server waiting for a child) and
// then puts back what was there before. If the application installed a
// handler of its own in between, that one is newer than what sockserv
// saved: it stays, since putting the saved one back would silently undo
// the application's call. (Between the check and the restore another
// thread could still install one; sigaction() offers no compare-and-swap.)
#pragma once

#include <csignal>

namespace sockserv::detail {

inline void restore_disposition(int signo, const struct sigaction& previous, void (*ours)(int),
                                void (*ours_with_info)(int, siginfo_t*, void*)) noexcept {
  struct sigaction now {};
  if (::sigaction(signo, nullptr, &now) != 0) return;
  const bool still_ours =
      (now.sa_flags & SA_SIGINFO) ? now.sa_sigaction == ours_with_info : now.sa_handler == ours;
  if (still_ours) ::sigaction(signo, &previous, nullptr);
}

}  // namespace sockserv::detail
