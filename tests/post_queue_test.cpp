// Posts from other threads (include/sockserv/loop/post_queue.hpp) on each
// poller's loop: many producers, every post delivered exactly once and in
// order per producer; a full queue refuses try_post() and makes post() wait
// until the loop drains it; stop() releases waiting producers; task_queue
// runs functions on the loop's thread.
#include "support/loops.hpp"
#include "support/processes.hpp"

#include <sockserv/loop.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <pthread.h>
#include <thread>
#include <vector>

using test_support::epoll_loop;
using test_support::joining_thread;
using test_support::poll_loop;
using test_support::run_until;
using test_support::select_loop;
using test_support::serving_loop;

namespace {
struct message {
  int producer = -1;
  int number = -1;
};

// What the loop received: per producer, the next number expected.
struct inbox {
  std::vector<int> next;
  int out_of_order = 0;
  long delivered = 0;
  explicit inbox(std::size_t producers) : next(producers, 0) {}
  void take(const message& m) {
    ++delivered;
    if (m.producer < 0 || static_cast<std::size_t>(m.producer) >= next.size()) {
      ++out_of_order;
      return;
    }
    int& expected = next[static_cast<std::size_t>(m.producer)];
    if (m.number != expected) ++out_of_order;
    expected = m.number + 1;
  }
};
}  // namespace

TEMPLATE_TEST_CASE("8 threads post 10 000 messages each: all delivered once, in order per thread",
                   "[loop][post]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  constexpr int producers = 8;
  const int per_producer = test_support::scaled(10000);
  inbox received(producers);
  auto queue = std::make_unique<sockserv::post_queue<message, 256>>();
  REQUIRE(queue->start(loop, [&received](message& m) { received.take(m); }));
  std::atomic<int> refused{0}, full{0};
  {
    std::vector<std::unique_ptr<joining_thread>> threads;
    for (int p = 0; p < producers; ++p)
      threads.push_back(std::make_unique<joining_thread>([&queue, &refused, &full, p, per_producer] {
        for (int n = 0; n < per_producer; ++n) {
          const message m{p, n};
          // Half the producers spin on try_post, half wait in post().
          if (p % 2 == 0) {
            while (!queue->try_post(m)) {
              full.fetch_add(1);
              std::this_thread::yield();  // 2 cores: let the loop's thread drain
            }
          } else if (!queue->post(m)) {
            refused.fetch_add(1);
          }
        }
      }));
    REQUIRE(run_until(loop, [&] { return received.delivered == long{producers} * per_producer; }, 30000));
  }
  CHECK(refused.load() == 0);
  CHECK(received.out_of_order == 0);
  for (int n : received.next) CHECK(n == per_producer);
  CHECK(queue->pending() == 0);
  REQUIRE(loop.run_once(0));  // nothing more, nothing twice
  CHECK(received.delivered == long{producers} * per_producer);
}

TEMPLATE_TEST_CASE("a full post queue refuses try_post() and keeps what it holds", "[loop][post]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  std::vector<int> got;
  sockserv::post_queue<int, 4> queue;
  REQUIRE(queue.start(loop, [&got](int& v) { got.push_back(v); }));
  for (int i = 0; i < 4; ++i) REQUIRE(queue.try_post(i));
  CHECK(queue.pending() == 4);
  CHECK_FALSE(queue.try_post(99));  // full: not queued
  CHECK(queue.pending() == 4);
  REQUIRE(run_until(loop, [&] { return got.size() == 4; }));
  CHECK(got == std::vector<int>{0, 1, 2, 3});
  REQUIRE(queue.try_post(4));  // room again
  REQUIRE(run_until(loop, [&] { return got.size() == 5; }));
  CHECK(got.back() == 4);
  REQUIRE(loop.run_once(0));
  CHECK(got.size() == 5);
}

namespace {
// Every delivered post posts itself again: an endless flood.
struct self_feeding {
  sockserv::post_queue<int, 8> queue;
  long got = 0;
  int reposted_refused = 0;
  void take(int& v) {
    ++got;
    if (!queue.try_post(v)) ++reposted_refused;
  }
};
}  // namespace

TEMPLATE_TEST_CASE("a flood of posts does not starve descriptors: a bounded number is delivered per turn",
                   "[loop][post]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  self_feeding flood;
  REQUIRE(flood.queue.start(loop, [&flood](int& v) { flood.take(v); }));
  test_support::descriptor_pair pipe;
  int reads = 0;
  sockserv::io_watcher w;
  REQUIRE(w.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness) {
    while (pipe.take() != -1) ++reads;
  }));
  for (int i = 0; i < 8; ++i) REQUIRE(flood.queue.try_post(i));
  for (int turn = 1; turn <= 10; ++turn) {
    pipe.put();
    const long before = flood.got;
    REQUIRE(loop.run_once(1000));
    CHECK(flood.got - before >= 1);
    // A queue's worth per run of its turn hook, which runs twice a turn
    // (before the wait, for what was posted outside one, and after it).
    CHECK(flood.got - before <= 2 * 8);
    CHECK(reads == turn);            // and the descriptor was served in it
  }
  CHECK(flood.reposted_refused == 0);
  flood.queue.stop();
}

namespace {
// A producer thread that posts one value with post() and says when it returned.
struct waiting_producer {
  std::atomic<bool> returned{false};
  std::atomic<bool> outcome{false};
  std::unique_ptr<joining_thread> thread;
  template <class Queue, class T>
  void start(Queue& queue, T value) {
    thread = std::make_unique<joining_thread>([this, &queue, value] {
      outcome = queue.post(value);
      returned = true;
    });
  }
};
}  // namespace

TEMPLATE_TEST_CASE("post() waits while the queue is full and completes when the loop drains it", "[loop][post]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  std::vector<int> got;
  sockserv::post_queue<int, 2> queue;
  REQUIRE(queue.start(loop, [&got](int& v) { got.push_back(v); }));
  REQUIRE(queue.try_post(1));
  REQUIRE(queue.try_post(2));
  waiting_producer producer;
  producer.start(queue, 3);
  // Full: the producer cannot have finished (it would have lost the value).
  CHECK_FALSE(producer.returned.load());
  CHECK(queue.pending() == 2);
  REQUIRE(run_until(loop, [&] { return got.size() == 3; }));
  producer.thread->join();
  CHECK(producer.returned.load());
  CHECK(producer.outcome.load());
  CHECK(got == std::vector<int>{1, 2, 3});
}

TEMPLATE_TEST_CASE("stop() releases producers waiting in post(); later posts fail", "[loop][post]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  int got = 0;
  sockserv::post_queue<int, 2> queue;
  REQUIRE(queue.start(loop, [&got](int&) { ++got; }));
  REQUIRE(queue.try_post(1));
  REQUIRE(queue.try_post(2));
  waiting_producer producers[3];
  for (auto& p : producers) p.start(queue, 7);
  queue.stop();
  for (auto& p : producers) {
    p.thread->join();  // bounded: stop() must wake them (the watchdog catches a hang)
    CHECK_FALSE(p.outcome.load());
  }
  CHECK_FALSE(queue.post(8));
  REQUIRE(loop.run_once(10));
  CHECK(got == 0);  // stopped: what was queued is not delivered
}

TEMPLATE_TEST_CASE("one producer, a tiny queue, many posts: post() is never left waiting", "[loop][post]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  const int count = test_support::scaled(20000);
  inbox received(1);
  sockserv::post_queue<message, 2> queue;
  REQUIRE(queue.start(loop, [&received](message& m) { received.take(m); }));
  std::atomic<int> refused{0};
  joining_thread producer([&] {
    for (int n = 0; n < count; ++n)
      if (!queue.post(message{0, n})) refused.fetch_add(1);
  });
  REQUIRE(run_until(loop, [&] { return received.delivered == count; }, 30000));
  producer.join();
  CHECK(refused.load() == 0);
  CHECK(received.out_of_order == 0);
}

TEMPLATE_TEST_CASE("task_queue runs posted functions on the loop's thread, in order", "[loop][post][task]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  struct record {
    std::atomic<int> ran{0};
    std::atomic<int> wrong_thread{0};
    std::atomic<int> out_of_order{0};
    pthread_t loop_thread{};
  } r;
  sockserv::task_queue<16> tasks;
  REQUIRE(tasks.start(loop));
  serving_loop serving{loop};
  REQUIRE(serving.wait_running());
  r.loop_thread = serving.native_handle();
  constexpr int count = 1000;
  {
    joining_thread poster([&] {
      for (int i = 0; i < count; ++i) {
        // The task captures the record and its number (two words).
        struct task_body {
          record* into;
          int number;
          void operator()() const {
            if (!::pthread_equal(::pthread_self(), into->loop_thread)) into->wrong_thread.fetch_add(1);
            if (into->ran.load() != number) into->out_of_order.fetch_add(1);
            into->ran.fetch_add(1);
          }
        };
        if (!tasks.post(task_body{&r, i})) return;
      }
    });
  }
  REQUIRE(test_support::eventually([&] { return r.ran.load() == count; }, 10.0));
  loop.request_shutdown();
  REQUIRE(serving.wait_finished());
  CHECK(r.wrong_thread.load() == 0);
  CHECK(r.out_of_order.load() == 0);
  CHECK(tasks.pending() == 0);
}
