// The request path owns its descriptor: when verify_request(), handle_error()
// or handle_busy() throws, the connection is still shut down and closed —
// nothing leaks, and the exception is not swallowed; when a handler's
// constructor or finish() throws (synchronous, threading, forking), the request fails
// (handle_error, stats().failed), nothing leaks and the server goes on.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/processes.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <new>
#include <sys/mman.h>
#include <stdexcept>
#include <string>
#include <type_traits>

using namespace test_support;

#if SOCKSERV_EXCEPTIONS
namespace {
struct failing : sockserv::stream_request_handler<> {
  sockserv::result handle() { return sockserv::result::failure("handler failed"); }
};
struct throwing_hooks_server : sockserv::tcp_server<failing, throwing_hooks_server> {
  using basic_server::basic_server;
  bool throw_in_verify = false;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) {
    if (throw_in_verify) throw std::runtime_error("verify_request threw");
    return true;
  }
  int errors = 0;
  int closes = 0;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {
    ++errors;
    throw std::logic_error("handle_error threw");
  }
  void close_request(sockserv::connection& request) {
    ++closes;
    basic_server::close_request(request);
  }
};
}  // namespace

TEST_CASE("a throwing verify_request() or handle_error() leaks no descriptor and the client sees the end") {
  auto server = listening<throwing_hooks_server>();
  const bool verify = GENERATE(true, false);
  server->throw_in_verify = verify;
  const std::size_t before = open_descriptor_count();
  {
    sockserv::file_descriptor client = connect_to(server->server_address);
    REQUIRE(wait_readable(server->fileno(), io_timeout_ms));
    if (verify)
      CHECK_THROWS_WITH(server->handle_request(), "verify_request threw");
    else
      CHECK_THROWS_WITH(server->handle_request(), "handle_error threw");
    CHECK(read_until_eof(client.fd()).eof);
  }
  CHECK(open_descriptor_count() == before);
  CHECK(server->closes == 1);
  CHECK(server->errors == (verify ? 0 : 1));  // its own exception is not reported to it again
  CHECK(server->stats().failed == (verify ? 0 : 1));
}
#endif

#if SOCKSERV_EXCEPTIONS
namespace {
// A process_request of the user's that hands the request to the policy,
// then throws: the exception goes on, the connection stays its new owner's.
template <class Handler, class Policy>
struct throws_after_forwarding
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, Handler, Policy,
                             throws_after_forwarding<Handler, Policy>> {
  using throws_after_forwarding::basic_server::basic_server;
  void process_request(sockserv::connection& request, const sockserv::socket_address& client) {
    throws_after_forwarding::basic_server::process_request(request, client);
    throw std::runtime_error("process_request threw after forwarding");
  }
};
struct event_echo : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
  }
};
using forwarding_to_a_worker = throws_after_forwarding<test_support::line_echo_handler, sockserv::threading<2>>;
using forwarding_to_a_slot = throws_after_forwarding<event_echo, sockserv::event_loop<sockserv::default_poller, 4>>;
}  // namespace

TEMPLATE_TEST_CASE("a process_request() of the user's that throws after handing the request on leaves it to "
                   "its new owner",
                   "[ownership]", forwarding_to_a_worker, forwarding_to_a_slot) {
  auto server = listening<TestType>();
  server->timeout = 1.0;  // each handle_request() below waits that long at most
  sockserv::file_descriptor client = connect_to(server->server_address);
  REQUIRE(wait_readable(server->fileno(), io_timeout_ms));
  CHECK_THROWS_WITH(server->handle_request(), "process_request threw after forwarding");
  send_all(client.fd(), "still mine\n");
  if constexpr (std::is_same_v<TestType, forwarding_to_a_worker>) {
    CHECK(read_line(client.fd()) == "still mine\n");  // the worker serves it
  } else {
    std::string reply;
    for (int turn = 0; turn < 20 && reply.empty(); ++turn) {  // the loop serves it as it turns
      CHECK(server->handle_request().ok());
      if (wait_readable(client.fd(), 0)) reply = read_line(client.fd());
    }
    CHECK(reply == "still mine\n");
  }
}
#endif

#if SOCKSERV_EXCEPTIONS
namespace {
// The first request's handler throws from its constructor or its finish()
// (as chosen); later ones echo a line.
// In memory shared with forked children, so that a child's throw uses up
// the parent's count too (forking).
std::atomic<int>& throws_left = *new (::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                                             MAP_SHARED | MAP_ANONYMOUS, -1, 0)) std::atomic<int>{0};
std::atomic<bool> throw_in_constructor{false};
struct throwing_handler : sockserv::stream_request_handler<> {
  throwing_handler() {
    if (throw_in_constructor && throws_left.fetch_sub(1) > 0) throw std::runtime_error("constructor threw");
  }
  void handle() { wfile.write(rfile.readline()); }
  void finish() {
    stream_request_handler::finish();
    if (!throw_in_constructor && throws_left.fetch_sub(1) > 0) throw std::runtime_error("finish threw");
  }
};
template <class Policy>
struct quiet_throwing_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, throwing_handler, Policy, quiet_throwing_server<Policy>> {
  using quiet_throwing_server::basic_server::basic_server;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {}
};
}  // namespace

TEMPLATE_TEST_CASE("a handler whose constructor or finish() throws leaks no descriptor, and the server goes on",
                   "[ownership]", sockserv::synchronous, sockserv::threading<2>, sockserv::forking<2>) {
  using server_type = quiet_throwing_server<TestType>;
  const bool in_constructor = GENERATE(true, false);
  throw_in_constructor = in_constructor;
  throws_left = 1;
  auto server = listening<server_type>();
  const std::size_t before = open_descriptor_count();
  {
    serving_thread<server_type> serving(*server, 0.05);
    {
      sockserv::file_descriptor first = connect_to(server->server_address);
      send_all(first.fd(), "first\n");
      read_outcome got = read_until_eof(first.fd());
      CHECK(got.eof);  // the request ended: closed, whatever it had sent
      CHECK(got.data == (in_constructor ? "" : "first\n"));  // finish() threw after the reply
    }
    CHECK(exchange_stream(server->server_address, "second\n") == "second\n");  // still serving
    CHECK(eventually([&] { return server->stats().failed == 1; }, 5.0));
  }
  CHECK(eventually([&] { return open_descriptor_count() == before; }, 5.0));
  throws_left = 0;
}
#endif

#if SOCKSERV_EXCEPTIONS
namespace {
// Event-loop handlers that fail as the test says, under a server whose
// handle_error() throws and whose process_request() only forwards.
enum class event_failure { none, setup_fails, setup_throws_int, finish_throws_int };
std::atomic<event_failure> event_fails{event_failure::none};
std::atomic<int> event_finishes{0};
struct failing_event : sockserv::event_request_handler<> {
  sockserv::result setup() {
    if (event_fails == event_failure::setup_fails) return sockserv::result::failure("setup failed");
    if (event_fails == event_failure::setup_throws_int) throw 42;
    return write("ready\n") ? sockserv::result{} : sockserv::result::failure("no room");
  }
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
  }
  void finish() {
    ++event_finishes;
    if (event_fails == event_failure::finish_throws_int) throw 42;
  }
};
template <std::size_t Capacity>
struct strict_event_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, failing_event,
                             sockserv::event_loop<sockserv::default_poller, Capacity>, strict_event_server<Capacity>> {
  using strict_event_server::basic_server::basic_server;
  int shutdowns = 0;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {
    throw std::runtime_error("handle_error threw");
  }
  void process_request(sockserv::connection& request, const sockserv::socket_address& client) {
    strict_event_server::basic_server::process_request(request, client);  // forwards only
  }
  void shutdown_request(sockserv::connection& request) {
    ++shutdowns;
    strict_event_server::basic_server::shutdown_request(request);
  }
};
// One empty turn first: the loop opens what it keeps (its poller) then, so
// that the descriptors counted afterwards are the requests' alone.
template <class Server>
void warm_up(Server& server) {
  server.timeout = 0.0;
  CHECK(server.handle_request().ok());
  server.timeout = 1.0;
}
}  // namespace

TEST_CASE("event loop: a setup() that fails or throws ends its connection once, without finish(), even when "
          "handle_error() throws",
          "[ownership][event_loop]") {
  const event_failure how = GENERATE(event_failure::setup_fails, event_failure::setup_throws_int);
  event_fails = how;
  event_finishes = 0;
  auto server = listening<strict_event_server<4>>();
  warm_up(*server);
  const std::size_t before = open_descriptor_count();
  {
    sockserv::file_descriptor client = connect_to(server->server_address);
    REQUIRE(wait_readable(server->fileno(), io_timeout_ms));
    if (how == event_failure::setup_fails)
      CHECK_THROWS_WITH(server->handle_request(), "handle_error threw");
    else
      CHECK_THROWS_AS(server->handle_request(), int);
    CHECK(server->active_connections() == 0);  // not left open and served
    read_outcome seen = read_until_eof(client.fd());
    CHECK(seen.eof);
    CHECK(seen.data.empty());
  }
  CHECK(server->shutdowns == 1);
  CHECK(event_finishes == 0);
  CHECK(open_descriptor_count() == before);
  event_fails = event_failure::none;
}

TEST_CASE("event loop: when the evicted connection's finish() throws, the newcomer is still shut down",
          "[ownership][event_loop][admission]") {
  event_fails = event_failure::none;
  event_finishes = 0;
  auto server = listening<strict_event_server<1>>();
  server->evict_idlest_when_full = true;
  warm_up(*server);
  const std::size_t before = open_descriptor_count();
  {
    sockserv::file_descriptor idle = connect_to(server->server_address);
    REQUIRE(wait_readable(server->fileno(), io_timeout_ms));
    REQUIRE(server->handle_request().ok());
    CHECK(read_line(idle.fd()) == "ready\n");
    event_fails = event_failure::finish_throws_int;
    sockserv::file_descriptor newcomer = connect_to(server->server_address);
    REQUIRE(wait_readable(server->fileno(), io_timeout_ms));
    CHECK_THROWS_AS(server->handle_request(), int);  // the evicted one's finish()
    CHECK(event_finishes == 1);
    CHECK(read_until_eof(idle.fd()).eof);      // evicted
    CHECK(read_until_eof(newcomer.fd()).eof);  // not left open with nobody owning it
  }
  CHECK(server->active_connections() == 0);
  CHECK(open_descriptor_count() == before);
  event_fails = event_failure::none;
}
#endif
