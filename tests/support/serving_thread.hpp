// Runs server.serve_forever() on its own thread. stop() is shutdown() plus
// join; the destructor stops too, so a failing REQUIRE cannot leave a
// thread serving a destroyed server. Waits are bounded (wait_finished);
// a shutdown() that never returns is caught by the per-test watchdog
// (tests/catch_main.cpp).
#pragma once

#include <catch2/catch.hpp>

#include <sockserv/error.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <utility>

namespace test_support {

// A std::thread that joins when it goes out of scope, so that a failing
// REQUIRE cannot leave it running (or end the program in ~thread).
class joining_thread {
 public:
  template <class Function>
  explicit joining_thread(Function function) : thread_(std::move(function)) {}
  joining_thread(const joining_thread&) = delete;
  joining_thread& operator=(const joining_thread&) = delete;
  ~joining_thread() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  pthread_t native_handle() { return thread_.native_handle(); }

 private:
  std::thread thread_;
};

template <class Server>
class serving_thread {
 public:
  explicit serving_thread(Server& server, double poll_interval = 0.5)
      : server_(server), thread_([this, poll_interval] { run(poll_interval); }) {}
  serving_thread(const serving_thread&) = delete;
  serving_thread& operator=(const serving_thread&) = delete;
  ~serving_thread() { stop(); }

  // shutdown() then join(); returns how many seconds shutdown() took.
  double stop() {
    if (!thread_.joinable()) return 0.0;
    auto start = std::chrono::steady_clock::now();
    server_.shutdown();
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    thread_.join();
    return took;
  }

  // True once serve_forever() has returned (waits at most `limit`).
  bool wait_finished(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> hold(lock_);
    return finished_changed_.wait_for(hold, limit, [this] { return finished_; });
  }

  // Joins a thread whose serve_forever() has already returned by itself.
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  bool finished() {
    std::lock_guard<std::mutex> hold(lock_);
    return finished_;
  }
  // What serve_forever() returned; meaningful once finished.
  sockserv::result outcome() {
    std::lock_guard<std::mutex> hold(lock_);
    return outcome_;
  }
  pthread_t native_handle() { return thread_.native_handle(); }

 private:
  void run(double poll_interval) {
    sockserv::result outcome = server_.serve_forever(poll_interval);
    std::lock_guard<std::mutex> hold(lock_);
    outcome_ = outcome;
    finished_ = true;
    finished_changed_.notify_all();
  }

  Server& server_;
  std::mutex lock_;
  std::condition_variable finished_changed_;
  bool finished_ = false;
  sockserv::result outcome_;
  std::thread thread_;  // last: the thread starts once the state above exists
};

// A server bound to a kernel-chosen loopback port, listening with room for
// `backlog` clients waiting to be accepted. (Past the backlog, Linux drops
// SYNs and clients retry after a second: floods in the tests stay within it.)
template <class Server>
std::unique_ptr<Server> listening(int backlog = 128) {
  auto server = std::make_unique<Server>(sockserv::inet_endpoint{"127.0.0.1", 0}, false);
  server->request_queue_size = backlog;
  REQUIRE(server->server_bind());
  REQUIRE(server->server_activate());
  return server;
}

}  // namespace test_support
