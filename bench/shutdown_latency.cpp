// bench/shutdown_latency.cpp — how long server.shutdown() takes while
// serve_forever(0.5) runs on another thread.
//
//   shutdown_latency [REPETITIONS]   -> JSON: median_us, max_us, mean_us
//
// Each repetition starts serve_forever(poll_interval = 0.5) on a thread,
// waits a varying 1-20 ms so the loop is asleep in its wait at a different
// point of its 500 ms interval, then times shutdown() from call to return
// (shutdown() returns once serve_forever has exited). The same server object
// serves every repetition, as Python's shutdown()/serve_forever() allow.
#include <sockserv.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

struct nothing : sockserv::stream_request_handler<> {
  void handle() {}
};

int main(int argc, char** argv) {
  int repetitions = argc > 1 ? std::atoi(argv[1]) : 200;
  sockserv::tcp_server<nothing> server({"127.0.0.1", 0});
  if (!server) return std::fprintf(stderr, "%s\n", server.error().message()), 1;
  std::vector<double> took;
  for (int i = 0; i < repetitions; ++i) {
    std::thread serving([&] { (void)server.serve_forever(0.5); });
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + (i * 7919) % 19000));
    auto start = std::chrono::steady_clock::now();
    server.shutdown();
    auto end = std::chrono::steady_clock::now();
    serving.join();
    took.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(took.begin(), took.end());
  double mean = 0;
  for (double t : took) mean += t;
  std::printf("{\"repetitions\": %d, \"median_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f}\n",
              repetitions, took[took.size() / 2], took[took.size() * 99 / 100], took.back(),
              mean / static_cast<double>(took.size()));
}
