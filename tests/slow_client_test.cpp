// A client trickling one byte every 0.2 s is cut off by the handler's
// request_timeout (a deadline for the whole request, not an inactivity
// timer), and an honest client is served, under every blocking policy.
#include "support/client.hpp"
#include "support/processes.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <poll.h>

using namespace test_support;

namespace {

// Echoes lines until end of input; the whole request may take 0.5 s.
struct deadline_echo : sockserv::stream_request_handler<> {
  deadline_echo() {
    timeout = 2.0;  // per receive: a trickler never trips it
    request_timeout = 0.5;
  }
  void handle() {
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline()) wfile.write(line);
  }
};

// The same with the handler's own recv()/send() on request.fd (a byte at a
// time, each line echoed): only the connection being shut down at the
// deadline ends its loop, since every recv() gets its byte within 0.2 s.
struct raw_deadline_echo : sockserv::stream_request_handler<> {
  raw_deadline_echo() {
    timeout = 2.0;
    request_timeout = 0.5;
  }
  void handle() {
    char line[256];
    std::size_t length = 0;
    for (;;) {
      const ssize_t n = ::recv(request.fd, line + length, 1, 0);
      if (n == -1 && errno == EINTR) continue;
      if (n <= 0) return;  // end of input, or shut down at the deadline
      if (line[length++] == '\n' || length == sizeof line) {
        if (::send(request.fd, line, length, MSG_NOSIGNAL) != static_cast<ssize_t>(length)) return;
        length = 0;
      }
    }
  }
};

// Sends one byte every 0.2 s over a connected client until the server ends
// the connection (or 6 s pass); returns how long the server let it go on.
// It runs on a thread of its own, so it makes no Catch2 assertion (Catch2's
// bookkeeping is not thread-safe: two threads asserting corrupted the heap
// under qemu-arm): the test connects it first.
double trickle_until_cut_off(int client) {
  const auto start = std::chrono::steady_clock::now();
  while (seconds_since(start) < 6.0) {
    if (::send(client, "x", 1, MSG_NOSIGNAL) != 1) break;  // reset by the server
    pollfd watched{client, POLLIN, 0};
    if (::poll(&watched, 1, 200) == 1) {  // the 0.2 s pace, ended by the server's answer
      if (read_until_eof(client, 2000).eof) break;
    }
  }
  return seconds_since(start);
}

}  // namespace

// Both handlers, under every blocking policy.
template <class Handler, class Policy>
void check_trickler_cut_off() {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, Handler, Policy>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server, 0.05);
  std::atomic<double> trickled{0};
  {
    sockserv::file_descriptor trickling = connect_to(server->server_address);
    joining_thread trickler([&] { trickled = trickle_until_cut_off(trickling.fd()); });
    sockserv::file_descriptor honest = connect_to(server->server_address);
    send_all(honest.fd(), "honest\n");
    ::shutdown(honest.fd(), SHUT_WR);  // done: its request ends well before the deadline
    CHECK(read_until_eof(honest.fd()).data == "honest\n");
  }
  INFO("the trickler was cut off after " << trickled.load() << " s");
  CHECK(trickled.load() >= 0.4);
  CHECK(trickled.load() < 0.5 + 1.5);
  // Counted (a forked child's count reaches the parent when it is reaped).
  CHECK(eventually([&] { return server->stats().timed_out == 1; }, 3.0));
  serving.stop();
  CHECK(server->graceful_close(2.0));  // every child reaped: its count is in
  CHECK(server->stats().timed_out == 1);  // the trickler's request only
}

TEMPLATE_TEST_CASE("request_timeout cuts off a trickling client while an honest one is served", "[slow]",
                   sockserv::synchronous, sockserv::threading<2>, sockserv::forking<2>) {
  check_trickler_cut_off<deadline_echo, TestType>();
}

// Under ThreadSanitizer (make tsan) a signal handler runs only once the
// system call it interrupted has returned, so the forked child's SIGALRM
// cannot end a recv() loop there: that case is built natively only (the
// README's sanitizer notes say so).
#if defined(__SANITIZE_THREAD__)
#define RECV_LOOP_POLICIES sockserv::synchronous, sockserv::threading<2>
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RECV_LOOP_POLICIES sockserv::synchronous, sockserv::threading<2>
#endif
#endif
#ifndef RECV_LOOP_POLICIES
#define RECV_LOOP_POLICIES sockserv::synchronous, sockserv::threading<2>, sockserv::forking<2>
#endif
TEMPLATE_TEST_CASE("request_timeout shuts the connection down under a handler's own recv() loop", "[slow]",
                   RECV_LOOP_POLICIES) {
  check_trickler_cut_off<raw_deadline_echo, TestType>();
}
