// SPDX-License-Identifier: BSL-1.0
// sockserv/poller/readiness.hpp — what every poller reports about a
// descriptor, and the interface they share.
//
// A poller watches descriptors, each registered with a small integer token
// (the event loop uses the connection's slot number), and calls
// on_ready(token, readiness) for each ready one:
//   result open();                                   // before first use
//   result add(int fd, token, bool read, bool write);
//   result modify(int fd, token, bool read, bool write);
//   void   remove(int fd, token);    // safe while wait() is reporting
//   int    wait(int timeout_ms, on_ready);   // ready count, 0, or -1 (errno)
//   void   close();
#pragma once

#include <cstdint>

namespace sockserv {

using poll_token = std::uint32_t;

struct readiness {
  bool readable = false;
  bool writable = false;
  bool failed = false;  // error or hang-up: reading will tell which
};

}  // namespace sockserv
