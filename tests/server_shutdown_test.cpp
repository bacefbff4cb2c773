// The shutdown handshake (server_base.hpp, server.hpp): shutdown() wakes
// serve_forever at once instead of after poll_interval, may be requested
// from a signal handler, is safe from a handler on the serving thread, and
// is remembered when no loop runs yet.
//
// The time bounds here (0.5 s against a 5 s poll_interval) check that the
// wake-up is an event rather than the poll timeout; they are not
// performance claims.
#include "support/client.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"
#include "support/signals.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <pthread.h>
#include <sys/ioctl.h>
#include <string>
#include <thread>
#include <vector>

using namespace test_support;
using std::chrono::milliseconds;

namespace {

constexpr double long_poll_interval = 5.0;  // a wake-up that waited for it would fail the test
constexpr double prompt = 0.5;

// The server a signal handler asks to shut down.
std::atomic<sockserv::server_base*> shutdown_target{nullptr};
extern "C" void request_shutdown_on_signal(int) {
  if (sockserv::server_base* server = shutdown_target.load()) server->request_shutdown();
}

struct shutdown_from_handler : sockserv::stream_request_handler<> {
  void handle() {
    server->shutdown();  // on the serving thread: must not wait for itself
    wfile.write("bye\n");
  }
};

}  // namespace

TEMPLATE_TEST_CASE("shutdown() returns promptly while serve_forever waits with a long poll_interval",
                   "[server][shutdown]", tcp4_kind, tcp6_kind, udp4_kind, udp6_kind, unix_stream_kind,
                   unix_datagram_kind) {
  temp_dir dir;
  using server_type = typename TestType::template server<typename TestType::echo_handler>;
  server_type server(TestType::endpoint(dir));
  serving_thread<server_type> serving(server, long_poll_interval);
  // After one exchange the loop is surely running, and idle in poll().
  CHECK(TestType::exchange(server.server_address, "ping\n", dir, 0) == "ping\n");
  double took = serving.stop();
  CHECK(took < prompt);
  CHECK(serving.finished());
  CHECK(serving.outcome().ok());
}

TEST_CASE("twenty servers started and shut down at once: every shutdown returns promptly", "[server][shutdown]") {
  using server_type = sockserv::tcp_server<line_echo_handler>;
  std::vector<std::unique_ptr<server_type>> servers;
  std::vector<std::unique_ptr<serving_thread<server_type>>> threads;
  for (int i = 0; i < 20; ++i) {
    servers.push_back(std::make_unique<server_type>(sockserv::inet_endpoint{"127.0.0.1", 0}));
    threads.push_back(std::make_unique<serving_thread<server_type>>(*servers.back(), long_poll_interval));
  }
  // No waiting for the loops to start: some shutdowns come before their
  // serve_forever, which must then return at once.
  double slowest = 0;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    double took = threads[i]->stop();
    slowest = took > slowest ? took : slowest;
    CHECK(threads[i]->finished());
    servers[i]->server_close();
    CHECK(servers[i]->fileno() == -1);
  }
  CHECK(slowest < prompt);
}

TEST_CASE("shutdown() before serve_forever makes it return at once; the next one serves", "[server][shutdown]") {
  sockserv::tcp_server<line_echo_handler> server({"127.0.0.1", 0});
  auto start = std::chrono::steady_clock::now();
  server.shutdown();  // no loop runs: must not wait
  server.shutdown();  // nor this one: both are one pending stop (README), which the next run takes
  CHECK(seconds_since(start) < prompt);

  start = std::chrono::steady_clock::now();
  sockserv::result outcome = server.serve_forever(long_poll_interval);
  CHECK(outcome.ok());
  CHECK(seconds_since(start) < prompt);

  // The pending shutdown was used up: a new loop serves.
  serving_thread<decltype(server)> serving(server, long_poll_interval);
  CHECK(exchange_stream(server.server_address, "after\n") == "after\n");
  CHECK(serving.stop() < prompt);
}

TEST_CASE("serve_forever can run again after shutdown", "[server][shutdown]") {
  sockserv::udp_server<datagram_echo_handler> server({"127.0.0.1", 0});
  for (int round = 0; round < 5; ++round) {
    serving_thread<decltype(server)> serving(server, long_poll_interval);
    std::string message = "round " + std::to_string(round) + "\n";
    CHECK(exchange_datagram(server.server_address, message) == message);
    CHECK(serving.stop() < prompt);
    CHECK(serving.outcome().ok());
  }
}

TEST_CASE("shutdown() from a handler on the serving thread does not deadlock", "[server][shutdown]") {
  sockserv::tcp_server<shutdown_from_handler> server({"127.0.0.1", 0});
  serving_thread<decltype(server)> serving(server, long_poll_interval);
  CHECK(exchange_stream(server.server_address, "stop please\n") == "bye\n");
  // serve_forever returns after that request, by itself.
  REQUIRE(serving.wait_finished(milliseconds(2000)));
  CHECK(serving.outcome().ok());
  serving.join();
}

TEST_CASE("request_shutdown() from a signal handler on the serving thread stops serve_forever",
          "[server][shutdown][signal]") {
  sockserv::tcp_server<line_echo_handler> server({"127.0.0.1", 0});
  scoped_signal_handler handler(SIGUSR2, request_shutdown_on_signal);
  shutdown_target = &server;
  serving_thread<decltype(server)> serving(server, long_poll_interval);
  CHECK(exchange_stream(server.server_address, "running\n") == "running\n");

  auto start = std::chrono::steady_clock::now();
  REQUIRE(::pthread_kill(serving.native_handle(), SIGUSR2) == 0);
  CHECK(serving.wait_finished(milliseconds(2000)));
  CHECK(seconds_since(start) < prompt);
  CHECK(serving.outcome().ok());
  serving.join();
  shutdown_target = nullptr;
}

TEST_CASE("request_shutdown() from a signal handler on another thread wakes serve_forever",
          "[server][shutdown][signal]") {
  // The serving thread's poll() is not interrupted here: only the wake-up
  // pipe can end it before poll_interval.
  sockserv::udp_server<datagram_echo_handler> server({"127.0.0.1", 0});
  scoped_signal_handler handler(SIGUSR2, request_shutdown_on_signal);
  shutdown_target = &server;
  serving_thread<decltype(server)> serving(server, long_poll_interval);
  CHECK(exchange_datagram(server.server_address, "running\n") == "running\n");

  auto start = std::chrono::steady_clock::now();
  REQUIRE(::pthread_kill(::pthread_self(), SIGUSR2) == 0);  // handled on this thread
  CHECK(serving.wait_finished(milliseconds(2000)));
  CHECK(seconds_since(start) < prompt);
  serving.join();
  shutdown_target = nullptr;
}

TEST_CASE("signals that do not ask for shutdown leave serve_forever serving", "[server][shutdown][signal]") {
  static std::atomic<int> delivered{0};
  delivered = 0;
  scoped_signal_handler handler(SIGUSR1, [](int) { delivered.fetch_add(1); });
  sockserv::tcp_server<line_echo_handler> server({"127.0.0.1", 0});
  serving_thread<decltype(server)> serving(server, long_poll_interval);
  CHECK(exchange_stream(server.server_address, "before\n") == "before\n");
  for (int i = 1; i <= 20; ++i) {
    REQUIRE(::pthread_kill(serving.native_handle(), SIGUSR1) == 0);
    // Next signal only once this one was handled (bounded wait).
    deadline until(io_timeout_ms);
    while (delivered.load() < i && until.remaining_ms() > 0) std::this_thread::yield();
  }
  CHECK(delivered.load() == 20);
  CHECK_FALSE(serving.finished());
  CHECK(exchange_stream(server.server_address, "after\n") == "after\n");
  CHECK(serving.stop() < prompt);
  CHECK(serving.outcome().ok());
}

namespace {
// Answers each line until end of input: a client that goes quiet holds it
// in readline(), inside serve_forever() (synchronous).
struct line_by_line : sockserv::stream_request_handler<> {
  void handle() {
    for (;;) {
      std::string_view line = rfile.readline();
      if (line.empty()) break;
      wfile.write(line);
    }
    wfile.write("end\n");
  }
};
}  // namespace

TEMPLATE_TEST_CASE("synchronous: shutdown() ends the input of the request in flight, so serve_forever returns "
                   "while its client is silent",
                   "[server][shutdown]", sockserv::inet4, sockserv::unix_socket) {
  temp_dir dir;
  using server_type = sockserv::basic_server<TestType, sockserv::stream, line_by_line>;
  auto server = [&] {
    if constexpr (std::is_same_v<TestType, sockserv::unix_socket>)
      return std::make_unique<server_type>(dir.file("quiet.sock"));
    else
      return std::make_unique<server_type>(sockserv::inet_endpoint{"127.0.0.1", 0});
  }();
  REQUIRE(*server);
  serving_thread<server_type> serving(*server, long_poll_interval);
  sockserv::file_descriptor client = connect_to(server->server_address);
  send_all(client.fd(), "one\n");
  CHECK(read_line(client.fd()) == "one\n");  // being served, now waiting for more
  send_all(client.fd(), "two\n");
  CHECK(read_line(client.fd()) == "two\n");
  CHECK(serving.stop() < prompt);  // not held by the silent client
  read_outcome rest = read_until_eof(client.fd());
  CHECK(rest.data == "end\n");  // the handler saw end of input and its last reply went out
  CHECK(rest.eof);
}

namespace {
// Lets the test request the stop while the client's second line waits,
// unread, in the kernel's queue for the connection.
std::atomic<int> unread_stage{0};  // 1: the line is queued, unread; 2: the stop was requested
struct reads_after_the_stop : sockserv::stream_request_handler<> {
  void handle() {
    wfile.write(rfile.readline());
    const int fd = request.fd;
    deadline until(io_timeout_ms);
    int queued = 0;
    while ((::ioctl(fd, FIONREAD, &queued) != 0 || queued < 4) && until.remaining_ms() > 0) std::this_thread::yield();
    unread_stage.store(1);
    while (unread_stage.load() != 2 && until.remaining_ms() > 0) std::this_thread::yield();
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline()) wfile.write(line);
    wfile.write("end\n");
  }
};
}  // namespace

TEST_CASE("synchronous: what the client sent before the stop is still read and answered after it",
          "[server][shutdown]") {
  unread_stage = 0;
  sockserv::tcp_server<reads_after_the_stop> server({"127.0.0.1", 0});
  REQUIRE(server);
  serving_thread<decltype(server)> serving(server, long_poll_interval);
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), "one\n");
  CHECK(read_line(client.fd()) == "one\n");
  send_all(client.fd(), "two\n");
  deadline until(io_timeout_ms);
  while (unread_stage.load() != 1 && until.remaining_ms() > 0) std::this_thread::yield();
  REQUIRE(unread_stage.load() == 1);
  server.request_shutdown();  // ends the input after "two", which is already here
  unread_stage.store(2);
  CHECK(serving.wait_finished(milliseconds(2000)));
  read_outcome rest = read_until_eof(client.fd());
  CHECK(rest.data == "two\nend\n");
  CHECK(rest.eof);
  CHECK(serving.outcome().ok());
}

TEST_CASE("synchronous: a stop left pending is serve_forever()'s: handle_request() serves as usual",
          "[server][shutdown]") {
  using server_type = sockserv::tcp_server<line_by_line>;
  server_type server({"127.0.0.1", 0});
  REQUIRE(server);
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), "one\n");
  server.request_shutdown();  // nothing runs: the stop stays pending (as in Python)
  std::thread later([&] {     // the rest of the request, once it is being served (no Catch2 here:
    char echoed[5] = {};        // it is not thread-safe)
    if (::recv(client.fd(), echoed, 4, MSG_WAITALL) == 4 && std::string_view(echoed) == "one\n")
      (void)::send(client.fd(), "two\n", 4, MSG_NOSIGNAL);
    ::shutdown(client.fd(), SHUT_WR);
  });
  CHECK(server.handle_request().ok());  // its input was not ended: "two" arrived after the stop
  later.join();
  CHECK(read_until_eof(client.fd()).data == "two\nend\n");
  const auto again = std::chrono::steady_clock::now();
  CHECK(server.serve_forever(long_poll_interval).ok());  // and the stop is still pending: returns at once
  CHECK(seconds_since(again) < prompt);
}
