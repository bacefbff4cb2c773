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

#if defined(__SANITIZE_THREAD__)
#define SOCKSERV_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOCKSERV_TEST_UNDER_TSAN 1
#endif
#endif
#ifdef SOCKSERV_TEST_UNDER_TSAN
#include <sanitizer/common_interface_defs.h>
#endif

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

#ifdef SOCKSERV_TEST_UNDER_TSAN
// TSan symbolizes a report (also one tests/tsan.supp then suppresses) in a
// child process it talks to over two pipes, started at the first report:
// mid-test, that would look like two leaked descriptors (and a live child)
// to the tests that count them. So it is started before the first test.
void start_tsan_symbolizer() {
  char where[128];
  __sanitizer_symbolize_pc(reinterpret_cast<void*>(&start_tsan_symbolizer), "%p %F", where, sizeof where);
}
#endif

struct watchdog_listener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
#ifdef SOCKSERV_TEST_UNDER_TSAN
  void testRunStarting(Catch::TestRunInfo const&) override { start_tsan_symbolizer(); }
#endif
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    test_watchdog::instance().arm(info.name);
  }
  void testCaseEnded(Catch::TestCaseStats const&) override { test_watchdog::instance().disarm(); }
};

}  // namespace

CATCH_REGISTER_LISTENER(watchdog_listener)
