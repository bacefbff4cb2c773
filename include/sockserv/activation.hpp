// SPDX-License-Identifier: BSL-1.0
// sockserv/activation.hpp — running under a service manager that opens the
// socket: systemd socket activation, inetd, procd.
//
// systemd passes listening sockets from descriptor 3 on and says how many in
// LISTEN_FDS, for the process LISTEN_PID. Adopt one with
//   tcp_server<H> server(sockserv::adopt_socket, sockserv::systemd_first_fd);
// inetd passes the socket on descriptor 0: in "wait" mode the bound (or
// listening) socket — adopt it the same way — and in "nowait" mode one
// accepted connection — serve it with server.serve_connection(0) on a
// server built with sockserv::no_socket.
#pragma once

#include <cstdlib>
#include <unistd.h>

namespace sockserv {

inline constexpr int systemd_first_fd = 3;

// How many sockets systemd handed this process (0 if none, or if they were
// meant for another process). The variables are removed, as sd_listen_fds
// does, so that children do not take the sockets for theirs.
inline int systemd_listen_fds() noexcept {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  int count = 0;
  if (pid != nullptr && fds != nullptr && std::strtol(pid, nullptr, 10) == static_cast<long>(::getpid())) {
    long parsed = std::strtol(fds, nullptr, 10);
    count = parsed > 0 && parsed < 1024 ? static_cast<int>(parsed) : 0;
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return count;
}

}  // namespace sockserv
