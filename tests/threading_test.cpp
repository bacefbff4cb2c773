// threading policy: handle_error under threads, back-pressure with a full
// pool, daemon_threads / block_on_close, datagram copies, and no growth of
// threads or descriptors across a thousand requests.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/processes.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

namespace {

// Handlers that park until their client sends a line: lets a test hold a
// request in flight for as long as it needs, without sleeping.
struct gate {
  std::mutex lock;
  std::condition_variable changed;
  int running = 0;
  int most = 0;
  int finished = 0;

  void enter() {
    std::lock_guard<std::mutex> hold(lock);
    most = std::max(most, ++running);
    changed.notify_all();
  }
  void leave() {
    std::lock_guard<std::mutex> hold(lock);
    --running;
    ++finished;
    changed.notify_all();
  }
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    std::unique_lock<std::mutex> hold(lock);
    return changed.wait_for(hold, std::chrono::seconds(10), [&] { return predicate(*this); });
  }
};
gate* the_gate = nullptr;

struct parked_handler : sockserv::stream_request_handler<> {
  void handle() {
    the_gate->enter();
    std::string_view line = rfile.readline();
    wfile.write(line);
    the_gate->leave();
  }
};

template <std::size_t Workers>
using parked_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, parked_handler, sockserv::threading<Workers>>;

struct gate_scope {
  gate g;
  gate_scope() { the_gate = &g; }
  ~gate_scope() { the_gate = nullptr; }
};

}  // namespace

TEST_CASE("threading: with every worker busy the server waits, and all clients are served", "[threading]") {
  gate_scope scope;
  parked_server<2> server({"127.0.0.1", 0}, false);
  server.request_queue_size = 16;  // the ten clients wait in the backlog
  REQUIRE(server.server_bind());
  REQUIRE(server.server_activate());
  test_support::serving_thread<parked_server<2>> loop(server);

  std::vector<sockserv::file_descriptor> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(test_support::connect_to(server.server_address));
  REQUIRE(scope.g.wait_for([](gate& g) { return g.running == 2; }));
  for (int i = 0; i < 10; ++i) {
    std::string line = "client " + std::to_string(i) + "\n";
    test_support::send_all(clients[static_cast<std::size_t>(i)].fd(), line);
    CHECK(test_support::read_until_eof(clients[static_cast<std::size_t>(i)].fd()).data == line);
  }
  REQUIRE(scope.g.wait_for([](gate& g) { return g.finished == 10; }));
  CHECK(scope.g.most == 2);
  CHECK(server.started_workers() == 2);
}

TEST_CASE("threading: server_close waits for requests in flight unless daemon_threads or !block_on_close",
          "[threading]") {
  enum class mode { waits, daemon, no_block };
  mode chosen = GENERATE(mode::waits, mode::daemon, mode::no_block);
  gate_scope scope;
  auto server = std::make_unique<parked_server<4>>(sockserv::inet_endpoint{"127.0.0.1", 0});
  server->daemon_threads = chosen == mode::daemon;
  server->block_on_close = chosen != mode::no_block;
  auto loop = std::make_unique<test_support::serving_thread<parked_server<4>>>(*server);
  sockserv::file_descriptor c = test_support::connect_to(server->server_address);
  REQUIRE(scope.g.wait_for([](gate& g) { return g.running == 1; }));
  loop->stop();

  std::atomic<bool> closed{false};
  std::thread closer([&] {
    server->server_close();
    closed = true;
  });
  if (chosen == mode::waits) {
    // It cannot return before the parked request ends; let that end now.
    CHECK_FALSE(closed.load());
    test_support::send_all(c.fd(), "released\n");
    closer.join();
    CHECK(closed.load());
    CHECK(scope.g.finished == 1);
    CHECK(server->requests_in_flight() == 0);
  } else {
    // It returns with the request still parked.
    REQUIRE(test_support::eventually([&] { return closed.load(); }));
    closer.join();
    CHECK(scope.g.finished == 0);
    CHECK(server->requests_in_flight() == 1);
    test_support::send_all(c.fd(), "released\n");
  }
  server.reset();  // the destructor waits for everything, daemon or not
  CHECK(scope.g.finished == 1);
  CHECK(test_support::read_until_eof(c.fd()).data == "released\n");
}

namespace {
struct error_counts {
  std::atomic<int> handle_error{0};
  std::atomic<int> shutdown_request{0};
};
error_counts* counts = nullptr;

using failing_handler = test_support::line_failing_handler;

struct counting_threaded_server
    : sockserv::threading_tcp_server<failing_handler, counting_threaded_server> {
  using base = sockserv::threading_tcp_server<failing_handler, counting_threaded_server>;
  using base::base;
  // Runs on a worker thread: records, and the test thread checks (Catch2
  // assertions are not thread-safe).
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    if (std::string(what) == "handler failed") ++counts->handle_error;
  }
  void shutdown_request(sockserv::connection& request) {
    ++counts->shutdown_request;
    base::shutdown_request(request);
  }
};
}  // namespace

TEST_CASE("threading: a std::exception reaches handle_error once; other exceptions do not", "[threading][errors]") {
  error_counts seen;
  counts = &seen;
  counting_threaded_server server({"127.0.0.1", 0});
  test_support::serving_thread<counting_threaded_server> loop(server);
  CHECK(test_support::exchange_stream(server.server_address, "std\n").empty());    // shut down, no reply
  CHECK(test_support::exchange_stream(server.server_address, "other\n").empty());  // still shut down
  CHECK(test_support::exchange_stream(server.server_address, "fine\n") == "served\n");  // and it goes on
  loop.stop();
  server.server_close();
  CHECK(seen.handle_error == 1);
  CHECK(seen.shutdown_request == 3);
  counts = nullptr;
}

namespace {
struct tagged_echo_handler : sockserv::datagram_request_handler<> {
  void handle() { wfile.write(packet); }
};
}  // namespace

TEST_CASE("threading: each datagram is copied before the next one is received", "[threading][datagram]") {
  using server_type = sockserv::threading_udp_server<tagged_echo_handler>;
  server_type server({"127.0.0.1", 0});
  test_support::serving_thread<server_type> loop(server);
  sockserv::file_descriptor c = test_support::open_datagram_client(AF_INET);
  constexpr int count = 200;
  for (int i = 0; i < count; ++i)
    test_support::send_datagram(c.fd(), server.server_address,
                                "packet-" + std::to_string(i) + std::string(static_cast<std::size_t>(i), 'x'));
  std::set<std::string> replies;
  for (int i = 0; i < count; ++i) replies.insert(test_support::receive_datagram(c.fd()).value_or(""));
  for (int i = 0; i < count; ++i)
    CHECK(replies.count("packet-" + std::to_string(i) + std::string(static_cast<std::size_t>(i), 'x')) == 1);
}

namespace {
struct echo_line_handler : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
}  // namespace

TEST_CASE("threading: a thousand requests leave no extra threads or descriptors", "[threading][leaks]") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_line_handler, sockserv::threading<4>>;
  const std::size_t descriptors_before = test_support::open_descriptor_count();
  const std::size_t threads_before = test_support::running_threads();
  {
    server_type server({"127.0.0.1", 0});
    test_support::serving_thread<server_type> loop(server);
    for (int i = 0; i < 1000; ++i) REQUIRE(test_support::exchange_stream(server.server_address, "ping\n") == "ping\n");
    // Finished work does not accumulate: nothing in flight, pool bounded.
    REQUIRE(test_support::eventually([&] { return server.requests_in_flight() == 0; }));
    CHECK(server.started_workers() <= 4);
    CHECK(test_support::running_threads() <= threads_before + 1 + 4);  // serving thread + pool
  }
  CHECK(test_support::running_threads() == threads_before);
  CHECK(test_support::open_descriptor_count() == descriptors_before);
}

namespace {
// A worker whose stack cannot be had: mapping it fails, so no worker can
// ever be started (a machine out of memory or thread slots looks the same).
constexpr std::size_t unmappable_stack = std::numeric_limits<std::size_t>::max() / 4 * 3;
struct counting_errors_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, test_support::line_echo_handler,
                             sockserv::threading<1, unmappable_stack>, counting_errors_server> {
  using basic_server::basic_server;
  int errors = 0;
  bool throw_in_handle_error = false;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {
    ++errors;
#if SOCKSERV_EXCEPTIONS
    if (throw_in_handle_error) throw std::runtime_error("handle_error threw");
#endif
  }
};
}  // namespace

TEST_CASE("threading: a request no worker can be started for is reported, counted as failed and shut down",
          "[threading][admission]") {
  auto server = test_support::listening<counting_errors_server>();
  for (int round = 1; round <= 2; ++round) {  // and the server goes on
    sockserv::file_descriptor client = test_support::connect_to(server->server_address);
    test_support::send_all(client.fd(), "hello\n");
    CHECK(server->handle_request().ok());  // the request was fetched; its failure went to handle_error
    CHECK(test_support::read_until_eof(client.fd(), 2000).eof);  // shut down unanswered
    CHECK(server->errors == round);
    CHECK(server->stats().failed == static_cast<unsigned long>(round));
  }
  CHECK(server->started_workers() == 0);
#if SOCKSERV_EXCEPTIONS
  // handle_error() throwing there: the exception goes on, the request is
  // still shut down and its descriptor closed.
  server->throw_in_handle_error = true;
  const std::size_t descriptors_before = test_support::open_descriptor_count();
  {
    sockserv::file_descriptor client = test_support::connect_to(server->server_address);
    REQUIRE(test_support::wait_readable(server->fileno(), 2000));
    CHECK_THROWS_WITH(server->handle_request(), "handle_error threw");
    CHECK(test_support::read_until_eof(client.fd(), 2000).eof);
  }
  CHECK(server->errors == 3);
  CHECK(test_support::open_descriptor_count() == descriptors_before);
#endif
}
