// bench/shutdown_full.cpp — how long shutdown() and graceful_close() take
// when every worker (threading<4>), child slot (forking<4>) or connection
// slot (event_loop<epoll_poller, 4>) is held by a client that never
// finishes, and one more client waits in the backlog; and how long a
// synchronous server's shutdown() takes while its one request waits for a
// silent client (the stop ends that request's input).
//
//   shutdown_full [REPETITIONS]   -> one JSON line per case
//
// Method: four idle clients each get "ready\n" from their request (so all
// four are in flight), a fifth connects and stays queued. Then, REPETITIONS
// times, serve_forever(0.5) runs on a thread, the main thread waits 1-20 ms
// (so the loop sleeps at a different point of its wait) and times
// shutdown() from call to return. Last, graceful_close(0.1) is timed once:
// the requests are still blocked, so it must cancel them (threading: shut
// their connections down; forking: kill and reap the children) and return
// just after its 100 ms deadline (the event loop: close the connections).
// Synchronous: REPETITIONS times, a client connects and gets "ready\n" (its
// request now waits in readline() inside serve_forever), and shutdown() is
// timed from call to return. Same-run figures, steady_clock.
#include <sockserv.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

struct idle : sockserv::stream_request_handler<> {
  void handle() {
    wfile.write("ready\n");
    wfile.write(rfile.readline());
  }
};

struct idle_event : sockserv::event_request_handler<> {
  void setup() { (void)write("ready\n"); }
  void handle_message(std::string_view line) { (void)write(line); }
};

int connect_to(const sockserv::socket_address& server) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 || ::connect(fd, server.data(), server.size()) == -1) return -1;
  return fd;
}

bool wait_ready(int fd) {
  char ready[6];
  return fd != -1 && ::recv(fd, ready, sizeof ready, MSG_WAITALL) == 6;
}

void print(const char* name, std::vector<double>& took, const char* graceful) {
  std::sort(took.begin(), took.end());
  std::printf("{\"policy\": \"%s\", \"repetitions\": %zu, \"shutdown_median_us\": %.1f, \"shutdown_p99_us\": %.1f, "
              "\"shutdown_max_us\": %.1f%s}\n",
              name, took.size(), took[took.size() / 2], took[took.size() * 99 / 100], took.back(), graceful);
}

template <class Policy, class Handler = idle>
int measure(const char* name, int repetitions) {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, Handler, Policy>;
  static server_type server({"127.0.0.1", 0});
  std::vector<int> clients;
  std::thread first([] { (void)server.serve_forever(0.5); });
  for (int i = 0; i < 4; ++i) {
    int fd = connect_to(server.server_address);
    if (!wait_ready(fd)) return std::fprintf(stderr, "no ready\n"), 1;
    clients.push_back(fd);
  }
  clients.push_back(connect_to(server.server_address));  // queued: no capacity for it
  server.shutdown();
  first.join();
  std::vector<double> took;
  for (int i = 0; i < repetitions; ++i) {
    std::thread serving([] { (void)server.serve_forever(0.5); });
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + (i * 7919) % 19000));
    auto start = std::chrono::steady_clock::now();
    server.shutdown();
    took.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    serving.join();
  }
  auto start = std::chrono::steady_clock::now();
  const bool finished = server.graceful_close(0.1);
  const double graceful_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (int fd : clients) ::close(fd);
  char graceful[96];
  std::snprintf(graceful, sizeof graceful, ", \"graceful_close_0.1_ms\": %.1f, \"all_finished\": %s", graceful_ms,
                finished ? "true" : "false");
  print(name, took, graceful);
  return 0;
}

int measure_synchronous_in_flight(int repetitions) {
  static sockserv::tcp_server<idle> server({"127.0.0.1", 0});
  std::vector<double> took;
  for (int i = 0; i < repetitions; ++i) {
    std::thread serving([] { (void)server.serve_forever(0.5); });
    const int client = connect_to(server.server_address);
    if (!wait_ready(client)) return std::fprintf(stderr, "no ready\n"), 1;  // its request waits in readline()
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + (i * 7919) % 19000));
    auto start = std::chrono::steady_clock::now();
    server.shutdown();
    took.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    serving.join();
    ::close(client);
  }
  print("synchronous, request in flight", took, "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int repetitions = argc > 1 ? std::atoi(argv[1]) : 100;
  if (measure<sockserv::threading<4>>("threading<4>", repetitions) != 0) return 1;
  if (measure<sockserv::forking<4>>("forking<4>", repetitions) != 0) return 1;
  if (measure<sockserv::event_loop<sockserv::epoll_poller, 4>, idle_event>("event_loop<epoll, 4>", repetitions) != 0)
    return 1;
  return measure_synchronous_in_flight(repetitions);
}
