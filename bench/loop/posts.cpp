// bench/loop/posts.cpp — posts from threads to a loop: sockserv's
// post_queue against libuv's usual pattern (a mutex-protected queue plus
// uv_async_send to wake the loop).
//
//   posts --impl sockserv|libuv [--producers P] [--count N]
//
// P threads each post N numbered values (producer << 40 | sequence) as
// fast as they can; the loop thread checks that every value arrives once
// and in order per producer. Timed from the start signal until the loop
// has all P*N (CPU: the process's user + system time over the same span,
// joining the producers included). Prints one JSON line: posts/s, CPU per
// post, values delivered, callbacks
// the loop ran (libuv: async callbacks, each draining the queue; sockserv:
// one per post), order errors.
//   sockserv: post_queue<std::uint64_t, 4096>, producers use post() (waits
//             while the ring is full: bounded, lossless).
//   libuv:    std::mutex + std::vector, swapped out by the async callback
//             (unbounded); uv_async_send after each push, as its
//             documentation shows (it coalesces: many sends, one callback).
#include <sockserv.hpp>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sys/resource.h>
#include <thread>
#include <vector>

namespace {

constexpr int shift = 40;

struct tally {
  std::vector<std::uint64_t> next;  // per producer: the sequence expected next
  std::uint64_t delivered = 0, callbacks = 0, order_errors = 0;
  explicit tally(int producers) : next(static_cast<std::size_t>(producers), 0) {}
  void take(std::uint64_t value) {
    auto producer = static_cast<std::size_t>(value >> shift);
    std::uint64_t sequence = value & ((1ull << shift) - 1);
    if (producer >= next.size() || sequence != next[producer]) ++order_errors;
    if (producer < next.size()) next[producer] = sequence + 1;
    ++delivered;
  }
};

using clock_type = std::chrono::steady_clock;

// User + system time of the whole process (every thread), in seconds.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}
double cpu_at_start = 0;

// P threads that wait for `go`, then each call post(value) for its N
// numbered values (stopping early if post returns false).
template <class Post>
std::vector<std::thread> start_producers(int producers, std::uint64_t count, const std::atomic<bool>& go, Post post) {
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&go, post, p, count] {
      while (!go.load()) std::this_thread::yield();
      const std::uint64_t base = static_cast<std::uint64_t>(p) << shift;
      for (std::uint64_t i = 0; i < count; ++i)
        if (!post(base | i)) return;
    });
  return threads;
}

void report(const char* impl, int producers, std::uint64_t count, const tally& t, clock_type::duration took) {
  const double seconds = std::chrono::duration<double>(took).count();
  const double cpu = process_cpu_seconds() - cpu_at_start;
  std::printf("{\"impl\": \"%s\", \"producers\": %d, \"posts\": %llu, \"delivered\": %llu, \"callbacks\": %llu, "
              "\"order_errors\": %llu, \"seconds\": %.4f, \"posts_per_s\": %.1f, \"cpu_ns_per_post\": %.1f}\n",
              impl, producers, static_cast<unsigned long long>(count * static_cast<std::uint64_t>(producers)),
              static_cast<unsigned long long>(t.delivered), static_cast<unsigned long long>(t.callbacks),
              static_cast<unsigned long long>(t.order_errors), seconds, static_cast<double>(t.delivered) / seconds,
              t.delivered ? cpu / static_cast<double>(t.delivered) * 1e9 : 0.0);
}

int run_sockserv(int producers, std::uint64_t count) {
  sockserv::basic_loop<sockserv::epoll_poller, 8> loop;
  static sockserv::post_queue<std::uint64_t, 4096> queue;  // 64 KiB of cells: static storage
  tally t(producers);
  const std::uint64_t total = count * static_cast<std::uint64_t>(producers);
  sockserv::result started = queue.start(loop, [&t](std::uint64_t& v) {
    ++t.callbacks;
    t.take(v);
  });
  if (!started) {
    std::fprintf(stderr, "posts: %s\n", started.message());
    return 1;
  }
  std::atomic<bool> go{false};
  auto threads = start_producers(producers, count, go, [](std::uint64_t v) { return queue.post(v); });
  cpu_at_start = process_cpu_seconds();
  const auto begin = clock_type::now();
  go = true;
  while (t.delivered < total) {
    sockserv::result turned = loop.run_once(1000);
    if (!turned) {
      std::fprintf(stderr, "posts: %s\n", turned.message());
      break;
    }
  }
  const auto took = clock_type::now() - begin;
  for (auto& th : threads) th.join();
  queue.stop();
  report("sockserv post_queue", producers, count, t, took);
  return t.order_errors == 0 && t.delivered == total ? 0 : 1;
}

struct uv_state {
  std::mutex lock;
  std::vector<std::uint64_t> queue, spare;
  tally* t;
  std::uint64_t total;
};

int run_libuv(int producers, std::uint64_t count) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  tally t(producers);
  uv_state state;
  state.t = &t;
  state.total = count * static_cast<std::uint64_t>(producers);
  state.queue.reserve(1 << 16);
  state.spare.reserve(1 << 16);
  uv_async_t async;
  async.data = &state;
  uv_async_init(&loop, &async, [](uv_async_t* handle) {
    auto& s = *static_cast<uv_state*>(handle->data);
    ++s.t->callbacks;
    {
      std::lock_guard<std::mutex> hold(s.lock);
      s.queue.swap(s.spare);
    }
    for (std::uint64_t v : s.spare) s.t->take(v);
    s.spare.clear();
    if (s.t->delivered >= s.total) uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
  });
  std::atomic<bool> go{false};
  auto threads = start_producers(producers, count, go, [&state, &async](std::uint64_t v) {
    {
      std::lock_guard<std::mutex> hold(state.lock);
      state.queue.push_back(v);
    }
    uv_async_send(&async);
    return true;
  });
  cpu_at_start = process_cpu_seconds();
  const auto begin = clock_type::now();
  go = true;
  uv_run(&loop, UV_RUN_DEFAULT);  // returns once the async handle is closed: all delivered
  const auto took = clock_type::now() - begin;
  for (auto& th : threads) th.join();
  uv_loop_close(&loop);
  report("libuv uv_async_send + mutex queue", producers, count, t, took);
  return t.order_errors == 0 && t.delivered == state.total ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* impl = "sockserv";
  int producers = 4;
  std::uint64_t count = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--impl")) impl = argv[i + 1];
    else if (!std::strcmp(argv[i], "--producers")) producers = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--count")) count = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (producers < 1 || producers > 1000 || count == 0) {
    std::fprintf(stderr, "usage: posts --impl sockserv|libuv [--producers P] [--count N]\n");
    return 2;
  }
  return !std::strcmp(impl, "libuv") ? run_libuv(producers, count) : run_sockserv(producers, count);
}
