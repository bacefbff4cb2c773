// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/lent_descriptor.hpp — the handler's own descriptor of its
// connection.
//
// Why a copy: a handler may close request.fd itself — fclose(fdopen(
// request.fd, "r+")) is the usual way. If request.fd were the number the
// server goes on using, that number could be handed to another socket at
// once (a worker's accept(), a socket the handler opens next), and then
// wfile's buffered reply and the server's shutdown and close would reach
// someone else's connection.
//
// So the server keeps the descriptor it accepted (rfile/wfile, cancels and
// shutdown_request use that one), and request.fd is a duplicate lent to the
// handler for its lifetime (synchronous, threading, forking: see
// basic_server::finish_request; not the event loop, see event_handler.hpp). Whatever the handler does
// with its copy, the server's number stays its own. When the handler is
// gone the copy is closed only if its number still refers to the same
// socket (same device and inode: while the server holds the original, no
// other socket can have that inode); a number the handler closed, and that
// may be someone else's by now, is left alone. The cost is a dup(), two
// fstat()s and a close() per request, and the copy's descriptor while the
// request runs.
#pragma once

#include "syscall.hpp"

#include <fcntl.h>
#include <sys/stat.h>

namespace sockserv::detail {

class lent_descriptor {
 public:
  lent_descriptor() noexcept = default;
  lent_descriptor(const lent_descriptor&) = delete;
  lent_descriptor& operator=(const lent_descriptor&) = delete;
  ~lent_descriptor() { reclaim(); }

  // Lends a duplicate of `owned` (the server's descriptor, which must stay
  // open until reclaim()). -1 with errno set if none could be made.
  int lend(int owned) noexcept {
    reclaim();
    owned_ = owned;
    lent_ = owned < 0 ? -1 : ::fcntl(owned, F_DUPFD_CLOEXEC, 0);
    return lent_;
  }

  int fd() const noexcept { return lent_; }

  // Closes the lent copy if it is still the handler's (see above).
  void reclaim() noexcept {
    if (lent_ >= 0 && same_open_file(lent_, owned_)) close_descriptor(lent_);
    lent_ = owned_ = -1;
  }

 private:
  static bool same_open_file(int a, int b) noexcept {
    struct stat first {}, second {};
    return ::fstat(a, &first) == 0 && ::fstat(b, &second) == 0 && first.st_dev == second.st_dev &&
           first.st_ino == second.st_ino;
  }

  int owned_ = -1;
  int lent_ = -1;
};

}  // namespace sockserv::detail
