// The Catch2 main, compiled once and linked into every test binary.
//
// It also arms a per-test-case watchdog: a test that exceeds its budget
// (a server that never answers, a shutdown() that never returns) ends the
// binary with a message naming the test, instead of hanging the suite.
// Budget: SOCKSERV_TEST_WATCHDOG seconds (default 60). Forked children do
// not inherit the watchdog thread.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace {

class test_watchdog {
 public:
  static test_watchdog& instance() {
    // Never destroyed: the detached thread may still wait on it at exit.
    static test_watchdog* dog = new test_watchdog;
    return *dog;
  }

  void arm(const std::string& test_name) {
    std::lock_guard<std::mutex> hold(lock_);
    std::snprintf(name_, sizeof name_, "%s", test_name.c_str());
    deadline_ = std::chrono::steady_clock::now() + budget_;
    armed_ = true;
    changed_.notify_one();
  }

  void disarm() {
    std::lock_guard<std::mutex> hold(lock_);
    armed_ = false;
    changed_.notify_one();
  }

 private:
  // Returns once the thread runs: its start-up (which allocates under
  // AddressSanitizer) must not happen later, inside a test that counts
  // allocations.
  test_watchdog() : budget_(read_budget()), thread_([this] { run(); }) {
    std::unique_lock<std::mutex> hold(lock_);
    changed_.wait(hold, [this] { return running_; });
    hold.unlock();
    thread_.detach();
  }

  static std::chrono::seconds read_budget() {
    const char* text = std::getenv("SOCKSERV_TEST_WATCHDOG");
    long seconds = text ? std::strtol(text, nullptr, 10) : 0;
    return std::chrono::seconds(seconds > 0 ? seconds : 60);
  }

  void run() {
    std::unique_lock<std::mutex> hold(lock_);
    running_ = true;
    changed_.notify_all();
    for (;;) {
      if (!armed_) {
        changed_.wait(hold);
        continue;
      }
      if (changed_.wait_until(hold, deadline_) == std::cv_status::timeout && armed_ &&
          std::chrono::steady_clock::now() >= deadline_) {
        char message[400];
        int length = std::snprintf(message, sizeof message,
                                   "\n!! watchdog: test case \"%s\" exceeded %lld s; aborting\n", name_,
                                   static_cast<long long>(budget_.count()));
        if (length > 0) (void)!::write(2, message, static_cast<std::size_t>(length));
        std::_Exit(124);
      }
    }
  }

  std::mutex lock_;
  std::condition_variable changed_;
  std::chrono::steady_clock::time_point deadline_{};
  bool armed_ = false;
  bool running_ = false;
  char name_[256] = {};
  std::chrono::seconds budget_;
  std::thread thread_;
};

struct watchdog_listener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    test_watchdog::instance().arm(info.name);
  }
  void testCaseEnded(Catch::TestCaseStats const&) override { test_watchdog::instance().disarm(); }
};

}  // namespace

CATCH_REGISTER_LISTENER(watchdog_listener)
