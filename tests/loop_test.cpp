// The daemon's loop (include/sockserv/loop/loop.hpp) on each poller: io
// watchers (readiness, modify, stopping inside a batch, a full table,
// select's FD_SETSIZE), running and stopping (serve_forever,
// request_shutdown from a thread and from a signal handler, shutdown from a
// callback, a stop requested before serving), EINTR in the wait, embedding
// (fd, next_timeout, run_once(0), watched_descriptors) and exceptions
// thrown by callbacks.
#include "support/loops.hpp"
#include "support/signals.hpp"

#include <sockserv/loop.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/select.h>
#include <thread>
#include <vector>

using Catch::Matchers::Contains;
using test_support::descriptor_pair;
using test_support::epoll_loop;
using test_support::joining_thread;
using test_support::poll_loop;
using test_support::run_until;
using test_support::scoped_signal_handler;
using test_support::select_loop;
using test_support::serving_loop;

namespace {
std::string poller_of(const sockserv::loop& l) { return l.poller_name(); }
}  // namespace

// ==== io_watcher ================================================================

TEMPLATE_TEST_CASE("an io_watcher is called when its pipe is readable, and only then", "[loop][io]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  descriptor_pair pipe;
  std::string got;
  int calls = 0;
  sockserv::io_watcher reader;
  REQUIRE(reader.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness r) {
    ++calls;
    CHECK(r.readable);
    for (int c = pipe.take(); c != -1; c = pipe.take()) got.push_back(static_cast<char>(c));
  }));
  CHECK(reader.active());
  CHECK(reader.fd() == pipe.read_end());
  CHECK(reader.reading());
  CHECK_FALSE(reader.writing());
  CHECK(loop.watched_count() == 1);

  REQUIRE(loop.run_once(0));
  CHECK(calls == 0);
  pipe.put('a');
  pipe.put('b');
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(got == "ab");
  REQUIRE(loop.run_once(0));  // drained: level-triggered, but nothing is left
  CHECK(calls == 1);

  reader.stop();
  CHECK_FALSE(reader.active());
  CHECK(loop.watched_count() == 0);
  pipe.put('c');
  REQUIRE(loop.run_once(10));
  CHECK(calls == 1);
}

TEMPLATE_TEST_CASE("an io_watcher follows a socket's write readiness: full buffer, then room again",
                   "[loop][io]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  descriptor_pair pair{descriptor_pair::socket_pair};
  int writable = 0;
  sockserv::io_watcher writer;
  REQUIRE(writer.start(loop, pair.write_end(), false, true, [&](sockserv::readiness r) {
    if (r.writable) ++writable;
  }));
  REQUIRE(run_until(loop, [&] { return writable == 1; }));  // an empty buffer is writable at once

  // Fill the socket until it refuses; now it is not writable.
  const std::string block(4096, 'z');
  std::size_t sent = 0;
  for (;;) {
    ssize_t n = ::send(pair.write_end(), block.data(), block.size(), MSG_NOSIGNAL);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) {
      REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  writable = 0;
  REQUIRE(loop.run_once(20));
  CHECK(writable == 0);

  // Drain the peer: room again.
  char sink[65536];
  std::size_t drained = 0;
  while (drained < sent) {
    ssize_t n = ::read(pair.read_end(), sink, sizeof sink);
    if (n == -1 && errno == EINTR) continue;
    if (n <= 0) break;
    drained += static_cast<std::size_t>(n);
  }
  CHECK(drained == sent);
  REQUIRE(run_until(loop, [&] { return writable >= 1; }));
}

TEMPLATE_TEST_CASE("io_watcher::modify switches between reading, writing, both and neither", "[loop][io]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  descriptor_pair pair{descriptor_pair::socket_pair};
  sockserv::readiness last;
  int calls = 0;
  sockserv::io_watcher w;
  REQUIRE(w.start(loop, pair.read_end(), true, false, [&](sockserv::readiness r) {
    last = r;
    ++calls;
  }));
  REQUIRE(loop.run_once(0));
  CHECK(calls == 0);  // nothing to read yet

  REQUIRE(w.modify(false, true));  // writing: ready at once
  CHECK(w.writing());
  CHECK_FALSE(w.reading());
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(last.writable);
  CHECK_FALSE(last.readable);

  REQUIRE(w.modify(false, false));  // neither: never called, even with data waiting
  REQUIRE(::write(pair.write_end(), "x", 1) == 1);
  calls = 0;
  REQUIRE(loop.run_once(20));
  CHECK(calls == 0);

  REQUIRE(w.modify(true, false));  // reading: the waiting byte
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(last.readable);
  CHECK_FALSE(last.writable);

  REQUIRE(w.modify(true, true));  // both
  calls = 0;
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(last.readable);
  CHECK(last.writable);
  REQUIRE(w.modify(true, true));  // unchanged: fine

  w.stop();
  sockserv::result refused = w.modify(true, false);
  CHECK_FALSE(refused.ok());
  CHECK(refused.code() == EINVAL);
  CHECK_THAT(refused.message(), Contains("not started"));
}

TEMPLATE_TEST_CASE("an io_watcher may stop itself in its callback", "[loop][io]", epoll_loop<>, poll_loop<>,
                   select_loop<>) {
  TestType loop;
  descriptor_pair pipe;
  int calls = 0;
  sockserv::io_watcher w;
  REQUIRE(w.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness) {
    ++calls;
    w.stop();  // with the byte still unread
  }));
  pipe.put();
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK_FALSE(w.active());
  REQUIRE(loop.run_once(20));
  CHECK(calls == 1);
  // And it can be started again, from outside a callback.
  REQUIRE(w.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness) { ++calls; }));
  REQUIRE(run_until(loop, [&] { return calls == 2; }));
}

namespace {
// Two watchers ready in the same turn; whichever runs first stops the other
// and starts a third on another ready descriptor.
struct rivals {
  descriptor_pair pipes[3];
  sockserv::io_watcher watchers[3];
  std::vector<int> calls;  // watcher numbers, in call order
  std::vector<int> in_turn;
  int turn = 0;
  void called(sockserv::loop& l, int which) {
    calls.push_back(which);
    in_turn.push_back(turn);
    while (pipes[which].take() != -1) {
    }
    if (which == 2) return;
    watchers[1 - which].stop();
    REQUIRE(watchers[2].start(l, pipes[2].read_end(), true, false, [this, &l](sockserv::readiness) { called(l, 2); }));
  }
};
}  // namespace

TEMPLATE_TEST_CASE("a watcher stopped by another in the same batch is not called; a watcher started then waits",
                   "[loop][io]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  rivals r;
  sockserv::loop& l = loop;
  for (int i = 0; i < 2; ++i)
    REQUIRE(r.watchers[i].start(loop, r.pipes[i].read_end(), true, false,
                                [&r, &l, i](sockserv::readiness) { r.called(l, i); }));
  for (auto& p : r.pipes) p.put();  // all three ready before the turn
  REQUIRE(loop.run_once(1000));
  REQUIRE(r.calls.size() == 1);  // the other was ready, in this batch, but stopped
  const int first = r.calls[0];
  CHECK_FALSE(r.watchers[1 - first].active());
  CHECK(r.watchers[2].active());
  r.turn = 1;
  REQUIRE(loop.run_once(1000));
  CHECK(r.calls == std::vector<int>{first, 2});
  CHECK(r.in_turn == std::vector<int>{0, 1});
  CHECK(loop.watched_count() == 2);
}

TEMPLATE_TEST_CASE("a full descriptor table refuses the next watcher clearly and loses nothing", "[loop][io]",
                   epoll_loop<4>, poll_loop<4>, select_loop<4>) {
  TestType loop;
  descriptor_pair pipes[5];
  sockserv::io_watcher watchers[5];
  int calls[5] = {};
  for (int i = 0; i < 4; ++i)
    REQUIRE(watchers[i].start(loop, pipes[i].read_end(), true, false, [&calls, i](sockserv::readiness) { ++calls[i]; }));
  CHECK(loop.watched_count() == 4);
  sockserv::result refused =
      watchers[4].start(loop, pipes[4].read_end(), true, false, [&calls](sockserv::readiness) { ++calls[4]; });
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.code() == ENOSPC);
  CHECK_THAT(refused.message(), Contains("descriptor table full"));
  CHECK_THAT(refused.message(), Contains(std::to_string(pipes[4].read_end())));
  CHECK_FALSE(watchers[4].active());
  CHECK(loop.watched_count() == 4);

  // Those watched still work; a freed place takes the refused one, many times.
  for (int round = 0; round < 20; ++round) {
    watchers[round % 4].stop();
    REQUIRE(watchers[4].start(loop, pipes[4].read_end(), true, false, [&calls](sockserv::readiness) { ++calls[4]; }));
    CHECK_FALSE(watchers[round % 4].start(loop, pipes[round % 4].read_end(), true, false, [](sockserv::readiness) {}));
    watchers[4].stop();
    REQUIRE(watchers[round % 4].start(loop, pipes[round % 4].read_end(), true, false,
                                      [&calls, round](sockserv::readiness) { ++calls[round % 4]; }));
  }
  for (auto& p : pipes) p.put();
  REQUIRE(run_until(loop, [&] { return calls[0] && calls[1] && calls[2] && calls[3]; }));
  CHECK(calls[4] == 0);
  // serve_forever needs a place for its wake-up descriptor: refused clearly too.
  sockserv::result serving = loop.serve_forever();
  CHECK_FALSE(serving.ok());
  CHECK_THAT(serving.message(), Contains("descriptor table full"));
}

TEMPLATE_TEST_CASE("descriptors at or above FD_SETSIZE: select refuses them with a message, poll and epoll take them",
                   "[loop][io][select]", epoll_loop<>, poll_loop<>, select_loop<>) {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  const rlim_t wanted = FD_SETSIZE + 8;
  const rlimit saved = limit;
  if (limit.rlim_cur < wanted && limit.rlim_max >= wanted) {
    limit.rlim_cur = wanted;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
  }
  if (limit.rlim_cur < wanted) {
    WARN("RLIMIT_NOFILE hard limit " << limit.rlim_max << " is below FD_SETSIZE: not tested here");
    return;
  }
  struct restore_limit {
    rlimit l;
    ~restore_limit() { ::setrlimit(RLIMIT_NOFILE, &l); }
  } restore{saved};
  TestType loop;
  descriptor_pair pipe;
  const int high = ::fcntl(pipe.read_end(), F_DUPFD_CLOEXEC, FD_SETSIZE);
  REQUIRE(high >= FD_SETSIZE);
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_high{high};
  int calls = 0;
  sockserv::io_watcher w;
  sockserv::result started = w.start(loop, high, true, false, [&](sockserv::readiness) { ++calls; });
  if (poller_of(loop) == "select") {
    REQUIRE_FALSE(started.ok());
    CHECK_THAT(started.message(), Contains("FD_SETSIZE"));
    CHECK_THAT(started.message(), Contains(std::to_string(high)));
    CHECK_FALSE(w.active());
    CHECK(loop.watched_count() == 0);  // its place in the table was given back
  } else {
    REQUIRE(started.ok());
    pipe.put();
    REQUIRE(run_until(loop, [&] { return calls == 1; }));
  }
}

TEMPLATE_TEST_CASE("a hang-up is reported, and the watcher's destructor unregisters it", "[loop][io]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  int calls = 0;
  bool saw_end = false;
  {
    descriptor_pair pair{descriptor_pair::socket_pair};
    sockserv::io_watcher w;
    REQUIRE(w.start(loop, pair.read_end(), true, false, [&](sockserv::readiness r) {
      ++calls;
      char c;
      if ((r.readable || r.failed) && ::read(pair.read_end(), &c, 1) == 0) saw_end = true;
    }));
    ::shutdown(pair.write_end(), SHUT_WR);
    REQUIRE(run_until(loop, [&] { return saw_end; }));
    CHECK(loop.watched_count() == 1);
  }  // the watcher goes first, then the descriptors
  CHECK(loop.watched_count() == 0);
  REQUIRE(loop.run_once(0));
}

// ==== running and stopping ======================================================

TEMPLATE_TEST_CASE("serve_forever stops on request_shutdown() from another thread", "[loop][shutdown]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  serving_loop serving{loop};
  REQUIRE(serving.wait_running());
  CHECK_FALSE(serving.finished());
  // A second thread may not serve the same loop meanwhile.
  sockserv::result second = loop.serve_forever();
  CHECK_FALSE(second.ok());
  CHECK_THAT(second.message(), Contains("already running"));
  loop.request_shutdown();
  REQUIRE(serving.wait_finished());
  CHECK(serving.outcome().ok());
  CHECK_FALSE(loop.shutdown_requested());  // consumed by the serve_forever it stopped
}

TEMPLATE_TEST_CASE("shutdown() from another thread returns once serve_forever has returned", "[loop][shutdown]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  serving_loop serving{loop};
  REQUIRE(serving.wait_running());
  loop.shutdown();
  // serve_forever has left the loop: this thread may serve it now.
  bool ran = false;
  sockserv::timer stop{loop, [&] {
                         ran = true;
                         loop.request_shutdown();
                       }};
  stop.start(1);
  CHECK(loop.serve_forever().ok());  // not "already running"
  CHECK(ran);
  REQUIRE(serving.wait_finished());
}

namespace {
sockserv::loop* loop_to_stop = nullptr;
extern "C" void stop_the_loop(int) { loop_to_stop->request_shutdown(); }
}  // namespace

TEMPLATE_TEST_CASE("serve_forever stops on request_shutdown() from a signal handler", "[loop][shutdown][signal]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  loop_to_stop = &loop;
  scoped_signal_handler on_usr2(SIGUSR2, stop_the_loop, 0);
  serving_loop serving{loop};
  REQUIRE(serving.wait_running());
  REQUIRE(::pthread_kill(serving.native_handle(), SIGUSR2) == 0);
  REQUIRE(serving.wait_finished());
  CHECK(serving.outcome().ok());
}

TEMPLATE_TEST_CASE("shutdown() from a callback stops the loop without deadlock", "[loop][shutdown]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  int after = 0;
  sockserv::timer stopper{loop, [&] { loop.shutdown(); }};
  sockserv::timer later{loop, [&] { ++after; }};
  stopper.start(1);
  later.start(10000);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(loop.serve_forever());
  CHECK(test_support::seconds_since(start) < 5.0);
  CHECK(after == 0);
  CHECK(later.armed());
}

TEMPLATE_TEST_CASE("a stop requested before serve_forever makes it return at once, once", "[loop][shutdown]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  bool safety = false;
  sockserv::timer rescue{loop, [&] {
                           safety = true;
                           loop.request_shutdown();
                         }};
  rescue.start(5000);
  loop.request_shutdown();
  CHECK(loop.shutdown_requested());
  REQUIRE(loop.serve_forever());
  CHECK_FALSE(safety);
  // The request was used up: the next serve_forever runs until asked again.
  int ticks = 0;
  sockserv::timer tick{loop, [&] {
                         if (++ticks == 3) loop.request_shutdown();
                       }};
  tick.start_periodic(1);
  REQUIRE(loop.serve_forever());
  CHECK(ticks == 3);
  CHECK_FALSE(safety);
}

namespace {
std::atomic<int> interruptions{0};
extern "C" void note_interruption(int) { interruptions.fetch_add(1); }

// Signals sent to one thread as fast as they go, until stopped.
class signal_storm {
 public:
  signal_storm(pthread_t target, int signo) : target_(target), signo_(signo), thread_([this] { run(); }) {}
  ~signal_storm() { stop(); }
  void stop() {
    running_ = false;
    thread_.join();
  }

 private:
  void run() {
    while (running_) {
      ::pthread_kill(target_, signo_);
      std::this_thread::yield();
    }
  }
  pthread_t target_;
  int signo_;
  std::atomic<bool> running_{true};
  joining_thread thread_;
};

// A pinger thread sends numbered bytes one at a time, each after the loop
// has acknowledged the one before.
struct ping_pong {
  descriptor_pair pings, pongs;
  int received = 0;
  int out_of_order = 0;
};
}  // namespace

TEMPLATE_TEST_CASE("EINTR in the loop's wait loses nothing: a storm of signals without SA_RESTART",
                   "[loop][signal][eintr]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  scoped_signal_handler on_usr1(SIGUSR1, note_interruption, 0);  // no SA_RESTART
  constexpr int exchanges = 300, chained = 50;
  ping_pong p;
  sockserv::io_watcher reader;
  REQUIRE(reader.start(loop, p.pings.read_end(), true, false, [&p](sockserv::readiness) {
    for (int c = p.pings.take(); c != -1; c = p.pings.take()) {
      if (c != p.received % 256) ++p.out_of_order;
      ++p.received;
      p.pongs.put();
    }
  }));
  int chain = 0;
  sockserv::timer again;
  again.bind(loop, [&] {
    if (++chain < chained) again.start(1);
  });
  again.start(1);

  const int before = interruptions.load();
  std::atomic<bool> pinger_failed{false};
  {
    signal_storm storm(::pthread_self(), SIGUSR1);
    joining_thread pinger([&] {
      for (int i = 0; i < exchanges; ++i) {
        const char byte = static_cast<char>(i % 256);
        if (::write(p.pings.write_end(), &byte, 1) != 1 || !test_support::wait_readable(p.pongs.read_end(), 5000) ||
            p.pongs.take() == -1) {
          pinger_failed = true;
          return;
        }
      }
    });
    REQUIRE(run_until(loop, [&] { return (p.received == exchanges && chain == chained) || pinger_failed; }, 20000));
    pinger.join();
    storm.stop();
  }
  CHECK_FALSE(pinger_failed);
  CHECK(p.received == exchanges);
  CHECK(p.out_of_order == 0);
  CHECK(chain == chained);
  CHECK(interruptions.load() > before);
}

// ==== embedding =================================================================

TEMPLATE_TEST_CASE("embedding: fd(), next_timeout(), run_once(0) and watched_descriptors()", "[loop][embed]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  const bool epoll = poller_of(loop) == "epoll";
  CHECK(loop.fd() == -1);  // not opened yet
  CHECK(loop.next_timeout() == -1);
  REQUIRE(loop.open());
  if (epoll)
    CHECK(loop.fd() >= 0);
  else
    CHECK(loop.fd() == -1);

  // next_timeout follows the earliest timer.
  int fired = 0;
  sockserv::timer soon{loop, [&] { ++fired; }}, later{loop, [&] { fired += 10; }};
  later.start(60000);
  CHECK(loop.next_timeout() > 59000);
  CHECK(loop.next_timeout() <= 60000);
  soon.start(500);
  CHECK(loop.next_timeout() > 0);
  CHECK(loop.next_timeout() <= 500);
  soon.start(0);
  CHECK(loop.next_timeout() == 0);
  REQUIRE(loop.run_once(0));
  CHECK(fired == 1);
  later.cancel();
  CHECK(loop.next_timeout() == -1);

  // run_once(0) does not wait; run_once(30) waits about 30 ms when idle.
  auto start = std::chrono::steady_clock::now();
  REQUIRE(loop.run_once(0));
  CHECK(test_support::seconds_since(start) < 1.0);
  start = std::chrono::steady_clock::now();
  REQUIRE(loop.run_once(30));
  const double waited = test_support::seconds_since(start);
  CHECK(waited >= 0.029);
  CHECK(waited < 2.0);

  // A watched descriptor: the host loop sees it through fd() (epoll) or
  // watched_descriptors() (poll, select), then run_once(0) serves it.
  descriptor_pair pipe;
  int reads = 0;
  sockserv::io_watcher w;
  REQUIRE(w.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness) {
    while (pipe.take() != -1) ++reads;
  }));
  pollfd listed[4] = {};
  REQUIRE(loop.watched_descriptors(listed, 4) == 1);
  CHECK(listed[0].fd == pipe.read_end());
  CHECK(listed[0].events == POLLIN);
  CHECK(loop.watched_descriptors(listed, 0) == 1);  // the count, even without room
  REQUIRE(w.modify(true, true));
  REQUIRE(loop.watched_descriptors(listed, 4) == 1);
  CHECK(listed[0].events == (POLLIN | POLLOUT));
  REQUIRE(w.modify(true, false));

  pipe.put();
  if (epoll) {
    pollfd host{loop.fd(), POLLIN, 0};
    CHECK(::poll(&host, 1, 5000) == 1);
  } else {
    CHECK(::poll(listed, 1, 5000) == 1);
  }
  REQUIRE(loop.run_once(0));
  CHECK(reads == 1);
  if (epoll) {
    pollfd host{loop.fd(), POLLIN, 0};
    CHECK(::poll(&host, 1, 0) == 0);  // served: the host loop sees nothing more
  }
}

TEMPLATE_TEST_CASE("a turn runs ready descriptors, then due timers, then turn hooks", "[loop]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  std::string order;
  descriptor_pair pipe;
  sockserv::io_watcher w;
  REQUIRE(w.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness) {
    pipe.take();
    order += 'd';
  }));
  sockserv::timer t{loop, [&] { order += 't'; }};
  sockserv::turn_hook hook;
  hook.start(loop, [&] { order += 'h'; });
  CHECK(hook.active());
  pipe.put();
  t.start(0);
  REQUIRE(loop.run_once(1000));
  // The hook also runs before the wait (what was written outside a turn).
  CHECK(order == "hdth");
  hook.stop();
  CHECK_FALSE(hook.active());
  order.clear();
  REQUIRE(loop.run_once(0));
  CHECK(order.empty());
}

// ==== exceptions ================================================================

#if SOCKSERV_EXCEPTIONS
namespace {
struct thrower {
  descriptor_pair pipes[2];
  sockserv::io_watcher watchers[2];
  int calls = 0;
  bool throw_next = true;
  void called(int which) {
    ++calls;
    while (pipes[which].take() != -1) {
    }
    if (!throw_next) return;
    watchers[1 - which].stop();  // ready in this batch too
    throw_next = false;
    throw std::runtime_error("io callback failed");
  }
};
}  // namespace

TEMPLATE_TEST_CASE("an exception from a timer or io callback propagates out of run_once; the loop goes on",
                   "[loop][exceptions]", epoll_loop<4>, poll_loop<4>, select_loop<4>) {
  TestType loop;
  SECTION("timers") {
    int ran = 0;
    sockserv::timer failing{loop, [] { throw std::runtime_error("timer failed"); }};
    sockserv::timer next{loop, [&] { ++ran; }};
    sockserv::timer periodic{loop, [&] {
                               if (++ran == 2) throw std::logic_error("periodic failed");
                             }};
    failing.start(0);
    next.start(0);
    REQUIRE_THROWS_WITH(loop.run_once(1000), "timer failed");
    CHECK_FALSE(failing.armed());  // it was taken out before it ran
    CHECK(next.armed());           // the rest wait for the next turn
    REQUIRE(loop.run_once(1000));
    CHECK(ran == 1);
    periodic.start_periodic(1);
    REQUIRE_THROWS_AS(run_until(loop, [&] { return ran >= 2; }), std::logic_error);
    CHECK(periodic.armed());  // re-armed before it ran
    REQUIRE(run_until(loop, [&] { return ran >= 3; }));
    periodic.cancel();
    CHECK(loop.timers().empty());
  }
  SECTION("io watchers: the table stays whole") {
    thrower t;
    for (int round = 0; round < 10; ++round) {
      t.calls = 0;
      t.throw_next = true;
      for (int i = 0; i < 2; ++i)
        REQUIRE(t.watchers[i].start(loop, t.pipes[i].read_end(), true, false, [&t, i](sockserv::readiness) { t.called(i); }));
      for (auto& p : t.pipes) p.put();
      REQUIRE_THROWS_WITH(loop.run_once(1000), "io callback failed");
      CHECK(t.calls == 1);  // the other, stopped in the batch, was not called
      CHECK(loop.watched_count() == 1);
      for (auto& w : t.watchers) w.stop();
      // Every place of the 4 is free again (a leaked token would refuse one).
      descriptor_pair extra[4];
      sockserv::io_watcher fill[4];
      for (int i = 0; i < 4; ++i) {
        sockserv::result filled = fill[i].start(loop, extra[i].read_end(), true, false, [](sockserv::readiness) {});
        INFO("round " << round << ", place " << i << ": " << filled.message());
        REQUIRE(filled.ok());
      }
    }
  }
  SECTION("serve_forever: it propagates, and the loop can serve again") {
    sockserv::timer failing{loop, [] { throw std::runtime_error("timer failed"); }};
    failing.start(0);
    REQUIRE_THROWS_WITH(loop.serve_forever(), "timer failed");
    int ticks = 0;
    sockserv::timer tick{loop, [&] {
                           if (++ticks == 2) loop.request_shutdown();
                         }};
    tick.start_periodic(1);
    REQUIRE(loop.serve_forever());
    CHECK(ticks == 2);
  }
}
#endif

namespace {
// An io callback that restarts its watcher with a callback of another shape,
// then goes on using its own captures.
struct restarting {
  int victim = 0;  // where the new callback's second capture points
  sockserv::loop* loop = nullptr;
  descriptor_pair pipe;
  sockserv::io_watcher w;
  int first_done = 0;
  int second_calls = 0;
};
}  // namespace

TEMPLATE_TEST_CASE("an io callback that restarts its watcher with another callback keeps its own captures",
                   "[loop][io]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  restarting r;
  r.loop = &loop;
  restarting* state = &r;
  int* done = &r.first_done;
  REQUIRE(r.w.start(loop, r.pipe.read_end(), true, false, [state, done](sockserv::readiness) {
    int* calls = &state->second_calls;
    state->pipe.take();
    if (!state->w.start(*state->loop, state->pipe.read_end(), true, false, [calls, state](sockserv::readiness) {
          state->pipe.take();
          ++*calls;
        }))
      return;
    ++*done;  // read after the stored callback was replaced
  }));
  r.pipe.put();
  REQUIRE(run_until(loop, [&] { return r.first_done == 1; }));
  CHECK(r.victim == 0);
  r.pipe.put();
  REQUIRE(run_until(loop, [&] { return r.second_calls == 1; }));
  CHECK(r.first_done == 1);
}
