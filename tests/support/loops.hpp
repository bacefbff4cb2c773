// The daemon's loop as a test parameter (one alias per poller), pipes and
// socket pairs to watch, and a bounded way to run a loop until something
// has happened. Used by the tests of include/sockserv/loop/.
#pragma once

#include "client.hpp"

#include <sockserv/loop.hpp>

#include <catch2/catch.hpp>

#include "serving_thread.hpp"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace test_support {

template <std::size_t N = 64>
using epoll_loop = sockserv::basic_loop<sockserv::epoll_poller, N>;
template <std::size_t N = 64>
using poll_loop = sockserv::basic_loop<sockserv::poll_poller, N>;
template <std::size_t N = 64>
using select_loop = sockserv::basic_loop<sockserv::select_poller, N>;

// Both ends of a pipe (or of a unix stream socket pair), non-blocking and
// close-on-exec, closed when the object goes out of scope.
class descriptor_pair {
 public:
  enum kind { pipe, socket_pair };
  explicit descriptor_pair(kind what = pipe) {
    int ends[2];
    if (what == pipe)
      REQUIRE(::pipe2(ends, O_NONBLOCK | O_CLOEXEC) == 0);
    else
      REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) == 0);
    read_end_ = ends[0];
    write_end_ = ends[1];
  }
  descriptor_pair(const descriptor_pair&) = delete;
  descriptor_pair& operator=(const descriptor_pair&) = delete;
  ~descriptor_pair() {
    if (read_end_ >= 0) ::close(read_end_);
    if (write_end_ >= 0) ::close(write_end_);
  }
  int read_end() const noexcept { return read_end_; }
  int write_end() const noexcept { return write_end_; }

  // From any thread (handlers put too): no Catch2 assertion, which is not
  // thread-safe; a byte that cannot be written to a fresh pipe is a broken
  // machine.
  void put(char byte = 'x') const {
    if (::write(write_end_, &byte, 1) != 1) std::abort();
  }
  // One byte, or -1 when there is none (EAGAIN).
  int take() const {
    unsigned char byte = 0;
    ssize_t n;
    do n = ::read(read_end_, &byte, 1);
    while (n == -1 && errno == EINTR);
    return n == 1 ? byte : -1;
  }

 private:
  int read_end_ = -1;
  int write_end_ = -1;
};

// `count` scaled by SOCKSERV_TEST_SCALE (a factor, default 1; e.g. 0.1 for
// a slow emulator), at least 1.
inline int scaled(int count) {
  const char* text = std::getenv("SOCKSERV_TEST_SCALE");
  const double factor = text ? std::strtod(text, nullptr) : 1.0;
  const double n = count * (factor > 0 ? factor : 1.0);
  return n < 1 ? 1 : static_cast<int>(n);
}

// Runs turns of the loop until done() holds, at most timeout_ms in all;
// false if it never did. Every turn must succeed.
template <class Predicate>
bool run_until(sockserv::loop& l, Predicate done, int timeout_ms = 5000) {
  deadline until(timeout_ms);
  while (!done()) {
    const int left = until.remaining_ms();
    if (left == 0) return false;
    sockserv::result turned = l.run_once(left);
    INFO(turned.message());
    REQUIRE(turned.ok());
  }
  return true;
}

// Runs loop.serve_forever() on a thread of its own. wait_running() returns
// once a callback has run inside serve_forever() (so a stop requested now
// stops a running loop); the destructor requests a stop and joins.
class serving_loop {
 public:
  explicit serving_loop(sockserv::loop& l) : loop_(l), thread_([this] { run(); }) {}
  serving_loop(const serving_loop&) = delete;
  serving_loop& operator=(const serving_loop&) = delete;
  ~serving_loop() {
    if (!finished()) loop_.request_shutdown();
    thread_.join();
  }

  bool wait_running(int timeout_ms = io_timeout_ms) { return wait_for(running_, timeout_ms); }
  bool wait_finished(int timeout_ms = io_timeout_ms) { return wait_for(finished_, timeout_ms); }
  bool finished() {
    std::lock_guard<std::mutex> hold(lock_);
    return finished_;
  }
  sockserv::result outcome() {
    std::lock_guard<std::mutex> hold(lock_);
    return outcome_;
  }
  pthread_t native_handle() { return thread_.native_handle(); }

 private:
  void run() {
    started_.bind(loop_, [this] { set(running_); });  // on the loop's thread, as timers must be
    started_.start(0);
    sockserv::result outcome = loop_.serve_forever();
    started_.cancel();
    std::lock_guard<std::mutex> hold(lock_);
    outcome_ = outcome;
    finished_ = true;
    changed_.notify_all();
  }
  void set(bool& flag) {
    std::lock_guard<std::mutex> hold(lock_);
    flag = true;
    changed_.notify_all();
  }
  bool wait_for(bool& flag, int timeout_ms) {
    std::unique_lock<std::mutex> hold(lock_);
    return changed_.wait_for(hold, std::chrono::milliseconds(timeout_ms), [&] { return flag; });
  }

  sockserv::loop& loop_;
  std::mutex lock_;
  std::condition_variable changed_;
  bool running_ = false;
  bool finished_ = false;
  sockserv::result outcome_;
  sockserv::timer started_;
  joining_thread thread_;  // last: starts once the state above exists
};

}  // namespace test_support
