// Edges of the event loop found by review (event_loop.hpp, loop.hpp,
// post_queue.hpp): a burst of short connections on a small table, closing
// or draining a server from its own callback, handle_request()'s timeout, a
// finish() that throws, a loop with no room for a server, and posts to a
// queue that is not running.
#include "support/client.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Greets, then closes at once: a connection that lives for one turn.
struct greeter : sockserv::event_request_handler<> {
  void setup() {
    if (!write("hi\n")) abort();
    close();
  }
};
using tiny_greeter = sockserv::basic_server<sockserv::inet4, sockserv::stream, greeter,
                                            sockserv::event_loop<sockserv::default_poller, 2>>;

}  // namespace

TEST_CASE("event edges: a burst of short connections on a two-slot table: every client served, none refused",
          "[event_loop][edges]") {
  auto server = test_support::listening<tiny_greeter>();
  std::vector<sockserv::file_descriptor> clients;
  for (int i = 0; i < 16; ++i) clients.push_back(test_support::connect_to(server->server_address));
  test_support::serving_thread<tiny_greeter> serving(*server);  // all 16 wait before the first turn
  for (auto& c : clients) {
    test_support::read_outcome got = test_support::read_until_eof(c.fd(), 5000);
    CHECK(got.data == "hi\n");
    CHECK(got.eof);
  }
  serving.stop();
  CHECK(server->stats().accepted == 16);
  CHECK(server->stats().failed == 0);
}

namespace {
struct closer;
using closer_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, closer, sockserv::event_loop<>>;
struct closer : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
    if (line == "close-server\n") server_as<closer_server>().server_close();  // from its own callback
  }
};
}  // namespace

TEST_CASE("event edges: server_close() from a handler closes after the queued replies, without freeing the "
          "running handler",
          "[event_loop][edges]") {
  auto server = test_support::listening<closer_server>();
  test_support::serving_thread<closer_server> serving(*server);
  sockserv::file_descriptor c = test_support::connect_to(server->server_address);
  test_support::send_all(c.fd(), "close-server\nafter\n");  // two lines in one read: the second must not reach a freed handler
  test_support::read_outcome got = test_support::read_until_eof(c.fd(), 5000);
  CHECK(got.data == "close-server\n");
  CHECK(got.eof);
  serving.stop();
  CHECK(server->fileno() == -1);
  CHECK(server->active_connections() == 0);
}

namespace {
struct drain_echo : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
  }
};
using drain_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, drain_echo, sockserv::event_loop<>>;
}  // namespace

TEST_CASE("event edges: graceful_close() from a callback of the shared loop does not turn the loop from within",
          "[event_loop][edges]") {
  sockserv::basic_loop<> loop;
  drain_server a({"127.0.0.1", 0}), b({"127.0.0.1", 0});
  REQUIRE(loop.add(a));
  REQUIRE(loop.add(b));
  sockserv::file_descriptor on_b = test_support::connect_to(b.server_address);
  test_support::send_all(on_b.fd(), "x\n");
  double took = -1;
  sockserv::timer drain{loop, [&] {
                          const auto start = std::chrono::steady_clock::now();
                          (void)b.graceful_close(2.0);  // must return at once: we are inside the loop
                          took = test_support::seconds_since(start);
                        }};
  drain.start(50);
  sockserv::timer stop{loop, [&] { loop.request_shutdown(); }};
  stop.start(300);
  REQUIRE(loop.serve_forever());
  CHECK(took >= 0);
  CHECK(took < 0.5);
  test_support::read_outcome rest = test_support::read_until_eof(on_b.fd(), 2000);
  CHECK(rest.data == "x\n");
  CHECK(rest.eof);  // b's connection was closed after its reply
}

TEST_CASE("event edges: handle_request() on an event-loop server returns after its timeout", "[event_loop][edges]") {
  drain_server server({"127.0.0.1", 0});
  server.timeout = 0.2;
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(server.handle_request());
  const double took = test_support::seconds_since(start);
  CHECK(took >= 0.15);
  CHECK(took < 3.0);
}

namespace {
std::atomic<int> finish_errors{0};
struct failing_finish : sockserv::event_request_handler<> {
  void handle_message(std::string_view) { close(); }
  void finish() { throw std::runtime_error("finish failed"); }
};
struct failing_finish_server : sockserv::basic_server<sockserv::inet4, sockserv::stream, failing_finish,
                                                      sockserv::event_loop<sockserv::default_poller, 2>,
                                                      failing_finish_server> {
  using basic_server::basic_server;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    if (std::string(what) == "finish failed") ++finish_errors;
  }
};
}  // namespace

#if SOCKSERV_EXCEPTIONS
TEST_CASE("event edges: a finish() that throws reaches handle_error and frees its slot and descriptor",
          "[event_loop][edges]") {
  finish_errors = 0;
  auto server = test_support::listening<failing_finish_server>();
  test_support::serving_thread<failing_finish_server> serving(*server);
  for (int i = 0; i < 6; ++i) {  // three times the table: a leaked slot would stop it serving
    sockserv::file_descriptor c = test_support::connect_to(server->server_address);
    test_support::send_all(c.fd(), "bye\n");
    CHECK(test_support::read_until_eof(c.fd(), 3000).eof);
  }
  serving.stop();
  CHECK(finish_errors == 6);
  CHECK(server->active_connections() == 0);
}
#endif

TEST_CASE("event edges: loop.add() fails when the loop has no room for the server's socket", "[event_loop][edges]") {
  sockserv::basic_loop<sockserv::poll_poller, 2> loop;
  int fds[2][2];
  REQUIRE(::pipe(fds[0]) == 0);
  REQUIRE(::pipe(fds[1]) == 0);
  sockserv::file_descriptor r0(fds[0][0]), w0(fds[0][1]), r1(fds[1][0]), w1(fds[1][1]);
  sockserv::io_watcher one, two;
  REQUIRE(one.start(loop, r0.fd(), true, false, [](sockserv::readiness) {}));
  REQUIRE(two.start(loop, r1.fd(), true, false, [](sockserv::readiness) {}));
  drain_server server({"127.0.0.1", 0});
  sockserv::result added = loop.add(server);
  CHECK(!added);
  CHECK(std::string(added.message()).find("no room") != std::string::npos);
  CHECK_FALSE(server.served_by_shared_loop());  // not left half-joined
}

TEST_CASE("event edges: a post queue not started, or stopped, refuses posts", "[event_loop][edges][post_queue]") {
  sockserv::basic_loop<> loop;
  sockserv::post_queue<int, 4> queue;
  CHECK_FALSE(queue.try_post(1));  // before start(): nowhere to deliver
  int got = 0;
  REQUIRE(queue.start(loop, [&](int& v) { got += v; }));
  CHECK(queue.try_post(2));
  REQUIRE(loop.run_once(0));
  CHECK(got == 2);
  queue.stop();
  CHECK_FALSE(queue.try_post(3));  // after stop(): it would never be delivered
}
