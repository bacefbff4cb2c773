// Installing a signal handler for the length of a test.
#pragma once

#include <catch2/catch.hpp>

#include <csignal>
#include <cstring>

namespace test_support {

// Installs handler for sig with the given sa_flags (0: no SA_RESTART, so
// blocking calls fail with EINTR) and restores the previous action after.
class scoped_signal_handler {
 public:
  scoped_signal_handler(int sig, void (*handler)(int), int flags = 0) : sig_(sig) {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    REQUIRE(::sigaction(sig, &action, &previous_) == 0);
  }
  scoped_signal_handler(const scoped_signal_handler&) = delete;
  scoped_signal_handler& operator=(const scoped_signal_handler&) = delete;
  ~scoped_signal_handler() { ::sigaction(sig_, &previous_, nullptr); }

 private:
  int sig_;
  struct sigaction previous_;
};

}  // namespace test_support
