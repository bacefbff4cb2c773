// Connections that reach each other (event_loop.hpp): handles that detect
// reuse, look-up and iteration, writes and closes across connections that
// go out at once, broadcast, the overflow policies, handler-owned timers
// and outbound connections.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <vector>

namespace {

// A client line is a command; the reply says what the server did.
//   id                 -> "id N"
//   to N TEXT          -> writes "TEXT\n" to connection N        -> "to STATUS"
//   bulk N BYTES       -> writes BYTES bytes to N in 1000-byte pieces -> "bulk WRITTEN"
//   close N            -> closes N (after its queued output)      -> "close 0|1"
//   bcast TEXT         -> "TEXT\n" to every other connection     -> "bcast W R D C"
//   remember           -> keeps this connection's handle          -> "remembered"
//   to-remembered TEXT -> writes "TEXT\n" through the kept handle -> "to STATUS"
//   find-remembered    -> looks the kept handle up                -> "found 0|1"
template <std::size_t Capacity>
struct hub_handler : sockserv::event_request_handler<sockserv::line_framing<>, 512, 256 * 1024> {
  void handle_message(std::string_view line);
};
template <std::size_t Capacity>
using hub_server_of = sockserv::basic_server<sockserv::inet4, sockserv::stream, hub_handler<Capacity>,
                                             sockserv::event_loop<sockserv::default_poller, Capacity>>;
using hub_server = hub_server_of<16>;

const char* status_name(sockserv::write_status s) {
  switch (s) {
    case sockserv::write_status::written: return "written";
    case sockserv::write_status::refused: return "refused";
    case sockserv::write_status::dropped: return "dropped";
    case sockserv::write_status::closed: return "closed";
    case sockserv::write_status::too_large: return "too_large";
    case sockserv::write_status::stale: return "stale";
  }
  return "?";
}

template <class Server>
sockserv::connection_id find_number(Server& server, unsigned long number) {
  sockserv::connection_id found;
  server.for_each_connection([&](typename Server::handler_type& h) {
    if (h.id().number() == number) found = h.id();
  });
  return found;
}

sockserv::connection_id remembered;  // used on the serving thread only

template <std::size_t Capacity>
void hub_handler<Capacity>::handle_message(std::string_view line) {
  auto& hub = this->template server_as<hub_server_of<Capacity>>();
  std::string text(line.substr(0, line.size() - 1));
  char reply[128];
  unsigned long target = 0;
  unsigned long bytes = 0;
  int used = 0;
  if (text == "id") {
    std::snprintf(reply, sizeof reply, "id %llu\n", static_cast<unsigned long long>(id().number()));
  } else if (std::sscanf(text.c_str(), "to %lu %n", &target, &used) == 1) {
    std::string message = text.substr(static_cast<std::size_t>(used)) + "\n";
    std::snprintf(reply, sizeof reply, "to %s\n", status_name(hub.write_to(find_number(hub, target), message).status));
  } else if (std::sscanf(text.c_str(), "bulk %lu %lu", &target, &bytes) == 2) {
    const std::string piece(1000, 'x');
    unsigned long written = 0;
    const sockserv::connection_id to = find_number(hub, target);
    while (written < bytes && hub.write_to(to, std::string_view(piece).substr(0, std::min(1000ul, bytes - written))))
      written += std::min(1000ul, bytes - written);
    std::snprintf(reply, sizeof reply, "bulk %lu\n", written);
  } else if (std::sscanf(text.c_str(), "close %lu", &target) == 1) {
    std::snprintf(reply, sizeof reply, "close %d\n", hub.close_connection(find_number(hub, target)) ? 1 : 0);
  } else if (text == "remember") {
    remembered = id();
    std::snprintf(reply, sizeof reply, "remembered\n");
  } else if (text.rfind("to-remembered ", 0) == 0) {
    std::snprintf(reply, sizeof reply, "to %s\n", status_name(hub.write_to(remembered, text.substr(14) + "\n").status));
  } else if (text == "find-remembered") {
    std::snprintf(reply, sizeof reply, "found %d\n", hub.find(remembered) != nullptr ? 1 : 0);
  } else if (text.rfind("bcast ", 0) == 0) {
    const sockserv::connection_id me = id();
    sockserv::broadcast_result r =
        hub.broadcast_if(text.substr(6) + "\n", [me](const hub_handler& h) { return h.id() != me; });
    std::snprintf(reply, sizeof reply, "bcast %zu %zu %zu %zu\n", r.written, r.refused, r.dropped, r.closed);
  } else {
    std::snprintf(reply, sizeof reply, "what?\n");
  }
  if (!write(std::string_view(reply))) abort();
}

// A connected client and the number the server gave it.
struct hub_client {
  sockserv::file_descriptor socket;
  unsigned long number = 0;
  explicit hub_client(const sockserv::socket_address& at) : socket(test_support::connect_to(at)) {
    test_support::send_all(socket.fd(), "id\n");
    std::string reply = test_support::read_line(socket.fd());
    REQUIRE(std::sscanf(reply.c_str(), "id %lu", &number) == 1);
  }
  std::string ask(const std::string& command) {
    test_support::send_all(socket.fd(), command + "\n");
    return test_support::read_line(socket.fd());
  }
  int fd() const { return socket.fd(); }
};

std::string numbered(const char* command, unsigned long n, const char* rest = "") {
  return std::string(command) + " " + std::to_string(n) + rest;
}

}  // namespace

TEST_CASE("connections: a write to another connection reaches it without that client sending anything",
          "[connections]") {
  auto server = test_support::listening<hub_server>();
  test_support::serving_thread<hub_server> serving(*server);
  hub_client a(server->server_address), b(server->server_address);
  CHECK(a.ask(numbered("to", b.number, " hello from a")) == "to written\n");
  CHECK(test_support::read_line(b.fd(), 2000) == "hello from a\n");
}

TEST_CASE("connections: more output than the socket takes at once is sent as the target drains it",
          "[connections]") {
  auto server = test_support::listening<hub_server>();
  test_support::serving_thread<hub_server> serving(*server);
  hub_client a(server->server_address), b(server->server_address);
  const std::size_t bytes = 200 * 1000;  // well past a loopback socket's send buffer
  CHECK(a.ask(numbered("bulk", b.number, " 200000")) == "bulk 200000\n");
  std::string received = test_support::read_exactly(b.fd(), bytes, 5000);
  CHECK(received.size() == bytes);  // all of it, though b never sent a byte
  CHECK(received.find_first_not_of('x') == std::string::npos);
}

TEST_CASE("connections: closed from another connection's handler, a connection still gets its queued output",
          "[connections]") {
  auto server = test_support::listening<hub_server>();
  test_support::serving_thread<hub_server> serving(*server);
  hub_client a(server->server_address), b(server->server_address);
  // Queue more than the socket takes, then close: all of it, then the end.
  test_support::send_all(a.fd(), numbered("bulk", b.number, " 100000\n") + numbered("close", b.number) + "\n");
  CHECK(test_support::read_line(a.fd()) == "bulk 100000\n");
  CHECK(test_support::read_line(a.fd()) == "close 1\n");
  test_support::read_outcome rest = test_support::read_until_eof(b.fd(), 5000);
  CHECK(rest.data.size() == 100000);
  CHECK(rest.eof);
  // Its handle is stale now.
  CHECK(a.ask(numbered("to", b.number, " late")) == "to stale\n");
  CHECK(a.ask(numbered("close", b.number)) == "close 0\n");
}

TEST_CASE("connections: a handle to a slot reused by a new connection is stale, never the new one",
          "[connections]") {
  using small_hub = hub_server_of<2>;
  auto server = test_support::listening<small_hub>();
  test_support::serving_thread<small_hub> serving(*server);
  {
    hub_client first(server->server_address);
    CHECK(first.ask("remember") == "remembered\n");
    CHECK(first.ask("find-remembered") == "found 1\n");
  }
  // With two slots, two new clients that both got answers occupy both: the
  // first client's slot is reused (a third would wait until it freed).
  hub_client second(server->server_address), third(server->server_address);
  CHECK(second.ask("to-remembered ghost") == "to stale\n");
  CHECK(second.ask("find-remembered") == "found 0\n");
  CHECK(test_support::wait_readable(third.fd(), 200) == false);  // nobody got the ghost message
}

TEST_CASE("connections: broadcast skips connections that are closing and counts them", "[connections]") {
  auto server = test_support::listening<hub_server>();
  test_support::serving_thread<hub_server> serving(*server);
  hub_client sender(server->server_address), keep1(server->server_address), keep2(server->server_address),
      leaving(server->server_address);
  // One command line closes `leaving` and broadcasts in the same turn.
  test_support::send_all(sender.fd(), numbered("close", leaving.number) + "\nbcast news\n");
  CHECK(test_support::read_line(sender.fd()) == "close 1\n");
  CHECK(test_support::read_line(sender.fd()) == "bcast 2 0 0 1\n");  // 2 written, 1 closing
  CHECK(test_support::read_line(keep1.fd()) == "news\n");
  CHECK(test_support::read_line(keep2.fd()) == "news\n");
  test_support::read_outcome rest = test_support::read_until_eof(leaving.fd(), 2000);
  CHECK(rest.eof);
  CHECK(rest.data.empty());
}

namespace {
// A broadcaster for the overflow tests: every line a client sends is
// broadcast to every other connection; the policy is the server's.
struct relay_handler : sockserv::event_request_handler<sockserv::line_framing<>, 256, 4096> {
  void handle_message(std::string_view line);
};
using overflow_relay_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, relay_handler, sockserv::event_loop<>>;
// "!small\n" shrinks this connection's send buffer (so that a client that
// stops reading fills its output soon) and is answered "ok\n".
void relay_handler::handle_message(std::string_view line) {
  if (line == "!small\n") {
    int size = 4096;
    ::setsockopt(request.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (!write("ok\n")) abort();
    return;
  }
  const sockserv::connection_id me = id();
  server_as<overflow_relay_server>().broadcast_if(line, [me](const relay_handler& h) { return h.id() != me; });
}

// Sends `count` lines from sender while `readers` read them all; the slow
// client reads nothing. Returns what each reader got.
// A client that will stop reading: small buffers at both ends.
sockserv::file_descriptor slow_client(const sockserv::socket_address& at) {
  sockserv::file_descriptor c = test_support::open_client_socket(AF_INET, SOCK_STREAM);
  int size = 4096;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  REQUIRE(test_support::connect_retrying_eintr(c.fd(), at) == 0);
  test_support::send_all(c.fd(), "!small\n");
  REQUIRE(test_support::read_line(c.fd()) == "ok\n");
  return c;
}

std::vector<std::size_t> flood(int sender, const std::vector<int>& readers, std::size_t count) {
  const std::string line = std::string(99, 'm') + "\n";
  std::vector<std::size_t> got(readers.size(), 0);
  std::string buffer(65536, '\0');
  std::size_t sent = 0;
  test_support::deadline limit(10000);
  while (!(limit.remaining_ms() == 0)) {
    if (sent < count) {
      test_support::send_all(sender, line);
      ++sent;
    }
    bool all = true;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      while (test_support::wait_readable(readers[i], sent < count ? 0 : 50)) {
        ssize_t n = ::recv(readers[i], buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n <= 0) break;
        got[i] += static_cast<std::size_t>(n);
      }
      if (got[i] < count * line.size()) all = false;
    }
    if (all && sent == count) break;
  }
  return got;
}
}  // namespace

namespace {
// A relay server under one overflow policy with a sender, a client that
// stops reading and one that reads everything; flooded with `lines`
// 100-byte lines, after which the fast reader must have all of them.
struct flooded_relay {
  static constexpr std::size_t lines = 6000;  // 600 KB: far past the slow client's 4 KB buffer and its socket's
  std::unique_ptr<overflow_relay_server> server = test_support::listening<overflow_relay_server>();
  std::unique_ptr<test_support::serving_thread<overflow_relay_server>> serving;
  sockserv::file_descriptor sender, slow, fast;

  explicit flooded_relay(sockserv::overflow_policy policy) {
    server->overflow = policy;
    serving = std::make_unique<test_support::serving_thread<overflow_relay_server>>(*server);
    sender = test_support::connect_to(server->server_address);
    slow = slow_client(server->server_address);
    fast = test_support::connect_to(server->server_address);
    std::vector<std::size_t> got = flood(sender.fd(), {fast.fd()}, lines);
    CHECK(got[0] == lines * 100);
  }
  // Stopped before the counters are read: they belong to the serving thread.
  sockserv::write_counters stop() {
    serving->stop();
    return server->writes;
  }
};
}  // namespace

TEST_CASE("connections: overflow policies decide what a client that stops reading costs", "[connections][overflow]") {
  const std::size_t all = flooded_relay::lines * 100;
  SECTION("close: the slow consumer is disconnected, the others get everything") {
    flooded_relay relay(sockserv::overflow_policy::close);
    // The slow client finds its connection closed once it reads.
    test_support::read_outcome rest = test_support::read_until_eof(relay.slow.fd(), 5000);
    CHECK((rest.eof || rest.error == ECONNRESET));
    CHECK(rest.data.size() < all);
    CHECK(relay.stop().closed_slow == 1);
  }
  SECTION("drop: the slow consumer misses messages (counted), the others get everything") {
    flooded_relay relay(sockserv::overflow_policy::drop);
    // Still connected, with whole lines only: what it reads now ends in '\n'.
    std::string pending;
    char buffer[65536];
    while (test_support::wait_readable(relay.slow.fd(), 200)) {
      ssize_t n = ::recv(relay.slow.fd(), buffer, sizeof buffer, MSG_DONTWAIT);
      if (n <= 0) break;
      pending.append(buffer, static_cast<std::size_t>(n));
    }
    REQUIRE(!pending.empty());
    CHECK(pending.size() % 100 == 0);
    const sockserv::write_counters writes = relay.stop();
    CHECK(writes.dropped > 0);
    CHECK(writes.closed_slow == 0);
    CHECK(pending.size() + writes.dropped * 100 == all);
  }
  SECTION("refuse: writes that do not fit are refused and counted, the connection stays") {
    flooded_relay relay(sockserv::overflow_policy::refuse);
    const sockserv::write_counters writes = relay.stop();
    CHECK(writes.refused > 0);
    CHECK(writes.dropped == 0);
    CHECK(relay.server->active_connections() == 3);
  }
}

namespace {
// Closes a connection that has not sent a complete message within
// first_message_ms, with a timer the handler owns.
std::atomic<int> first_message_ms{100};
struct impatient_handler : sockserv::event_request_handler<> {
  sockserv::timer deadline;
  void setup() {
    deadline.bind(loop(), [this] {
      if (!write("too slow\n")) abort();
      close();
    });
    deadline.start(first_message_ms);
  }
  void handle_message(std::string_view line) {
    deadline.cancel();
    if (!write(line)) abort();
  }
};
using impatient_server =
    sockserv::basic_server<sockserv::inet4, sockserv::stream, impatient_handler, sockserv::event_loop<>>;
}  // namespace

TEST_CASE("connections: a handler-owned timer closes a client that sends no complete message in time",
          "[connections][timer]") {
  auto server = test_support::listening<impatient_server>();
  test_support::serving_thread<impatient_server> serving(*server);
  sockserv::file_descriptor silent = test_support::connect_to(server->server_address);
  sockserv::file_descriptor prompt = test_support::connect_to(server->server_address);
  test_support::send_all(prompt.fd(), "hi\n");
  CHECK(test_support::read_line(prompt.fd()) == "hi\n");
  test_support::send_all(silent.fd(), "no newline yet");
  test_support::read_outcome cut = test_support::read_until_eof(silent.fd(), 3000);
  CHECK(cut.data == "too slow\n");
  CHECK(cut.eof);
  // The prompt client's timer was cancelled: still served well after.
  CHECK(test_support::wait_readable(prompt.fd(), 300) == false);
  test_support::send_all(prompt.fd(), "still here\n");
  CHECK(test_support::read_line(prompt.fd()) == "still here\n");
}

namespace {
// Outbound: connects, says hello, keeps what it hears.
std::atomic<int> connect_errors{0};
std::string last_connect_error;
std::atomic<int> replies_heard{0};
struct dialer_handler : sockserv::event_request_handler<> {
  void setup() {
    if (!write("hello\n")) abort();
  }
  void handle_message(std::string_view line) {
    if (line == "hello\n") ++replies_heard;
    close();
  }
};
struct dialer : sockserv::basic_server<sockserv::inet4, sockserv::stream, dialer_handler, sockserv::event_loop<>,
                                       dialer> {
  using basic_server::basic_server;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    last_connect_error = what;
    ++connect_errors;
  }
};
struct outbound_echo_handler : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
  }
};
using outbound_echo_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, outbound_echo_handler, sockserv::event_loop<>>;
}  // namespace

TEST_CASE("connections: an outbound connection is served by the same handler machinery, on a shared loop",
          "[connections][connect]") {
  connect_errors = 0;
  replies_heard = 0;
  sockserv::basic_loop<> loop;
  outbound_echo_server echo({"127.0.0.1", 0});
  dialer out(sockserv::no_socket);
  REQUIRE(loop.add(echo));
  REQUIRE(loop.add(out));
  const std::uint16_t port = echo.server_address.port();
  for (int i = 0; i < 3; ++i) {
    sockserv::connect_result started = out.connect(sockserv::inet_endpoint{"127.0.0.1", port}, 2.0);
    REQUIRE(started);
    CHECK(out.find(started.id) != nullptr);
  }
  sockserv::timer give_up{loop, [&] { loop.request_shutdown(); }};
  give_up.start(5000);
  sockserv::turn_hook done;
  done.start(loop, [&] {
    if (replies_heard == 3 && out.active_connections() == 0) loop.request_shutdown();
  });
  REQUIRE(loop.serve_forever());
  CHECK(replies_heard == 3);
  CHECK(connect_errors == 0);
  CHECK(out.active_connections() == 0);
}

TEST_CASE("connections: a refused outbound connection reaches handle_error and frees its slot",
          "[connections][connect]") {
  connect_errors = 0;
  std::uint16_t closed_port = 0;
  {
    outbound_echo_server probe({"127.0.0.1", 0});  // a port nobody listens on once it closes
    closed_port = probe.server_address.port();
  }
  sockserv::basic_loop<> loop;
  dialer out(sockserv::no_socket);
  REQUIRE(loop.add(out));
  sockserv::connect_result started = out.connect(sockserv::inet_endpoint{"127.0.0.1", closed_port}, 2.0);
  REQUIRE(started);
  test_support::deadline limit(5000);
  while (out.active_connections() > 0 && limit.remaining_ms() > 0) REQUIRE(loop.run_once(limit.remaining_ms()));
  CHECK(out.active_connections() == 0);
  CHECK(connect_errors == 1);
  CHECK(last_connect_error.find("connect 127.0.0.1:" + std::to_string(closed_port)) != std::string::npos);
  // (Not the errno text: qemu-user passes SO_ERROR on untranslated, so a
  // MIPS build names another error.)
}

namespace {
// A listener whose backlog is full: the kernel drops further SYNs, so a
// connect() to it stays in progress.
struct unanswering_listener {
  sockserv::file_descriptor full = test_support::open_client_socket(AF_INET, SOCK_STREAM);
  std::vector<sockserv::file_descriptor> fillers;
  sockserv::socket_address at = test_support::parse_address<sockserv::inet4>({"127.0.0.1", 0});
  unanswering_listener() {
    REQUIRE(::bind(full.fd(), at.data(), at.size()) == 0);
    REQUIRE(::listen(full.fd(), 0) == 0);
    at = test_support::local_address(full.fd());
    for (int i = 0; i < 4; ++i) {  // fill the accept queue (the kernel allows backlog + 1)
      sockserv::file_descriptor f = test_support::open_client_socket(AF_INET, SOCK_STREAM);
      sockserv::detail::set_nonblocking(f.fd(), true);
      (void)::connect(f.fd(), at.data(), at.size());
      fillers.push_back(std::move(f));
    }
  }
  sockserv::inet_endpoint endpoint() const { return {"127.0.0.1", at.port()}; }
};

// A dialer on its own loop, and a listener that never answers it.
struct dialing_nobody {
  unanswering_listener nobody;
  sockserv::basic_loop<> loop;
  dialer out{sockserv::no_socket};
  dialing_nobody() {
    connect_errors = 0;
    REQUIRE(loop.add(out));
  }
  // Turns the loop until `ms` have passed or no connection is left.
  void run_for(int ms) {
    test_support::deadline limit(ms);
    while (out.active_connections() > 0 && limit.remaining_ms() > 0) REQUIRE(loop.run_once(limit.remaining_ms()));
  }
};
}  // namespace

TEST_CASE_METHOD(dialing_nobody, "connections: an outbound connection nobody answers times out",
                 "[connections][connect]") {
  REQUIRE(out.connect(nobody.endpoint(), 0.3));
  run_for(5000);
  CHECK(out.active_connections() == 0);
  CHECK(connect_errors == 1);
  CHECK(last_connect_error.find("timed out") != std::string::npos);
}

TEST_CASE_METHOD(dialing_nobody, "connections: a NaN or negative connect timeout sets no limit",
                 "[connections][connect]") {
  REQUIRE(out.connect(nobody.endpoint(), std::numeric_limits<double>::quiet_NaN()));
  REQUIRE(out.connect(nobody.endpoint(), -1.0));
  run_for(300);  // a NaN taken as 0 s timed out in the first turn
  CHECK(out.active_connections() == 2);
  CHECK(connect_errors == 0);
}

#if SOCKSERV_EXCEPTIONS
namespace {
struct unbuildable_handler : dialer_handler {
  unbuildable_handler() { throw std::runtime_error("no handler today"); }
};
struct unbuildable_dialer
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, unbuildable_handler, sockserv::event_loop<>,
                             unbuildable_dialer> {
  using basic_server::basic_server;
  std::string error;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) { error = what; }
};
}  // namespace

TEST_CASE("connections: connect() whose handler constructor throws fails, reports it, and keeps no descriptor",
          "[connections][connect][ownership]") {
  outbound_echo_server echo({"127.0.0.1", 0});
  unbuildable_dialer out(sockserv::no_socket);
  const std::size_t before = test_support::open_descriptor_count();
  sockserv::connect_result failed = out.connect(sockserv::inet_endpoint{"127.0.0.1", echo.server_address.port()}, 1.0);
  CHECK(!failed);
  CHECK(out.error == "no handler today");
  CHECK(out.stats().failed == 1);
  CHECK(out.active_connections() == 0);
  CHECK(test_support::open_descriptor_count() == before);
}
#endif

TEST_CASE("connections: connect() fails at once, and says why, for a full table or a bad address",
          "[connections][connect]") {
  using one_slot = sockserv::basic_server<sockserv::inet4, sockserv::stream, dialer_handler,
                                          sockserv::event_loop<sockserv::default_poller, 1>>;
  outbound_echo_server echo({"127.0.0.1", 0});
  one_slot out(sockserv::no_socket);
  sockserv::connect_result bad = out.connect(sockserv::inet_endpoint{"not-an-address", 1}, 1.0);
  CHECK(!bad);
  CHECK(out.active_connections() == 0);
  REQUIRE(out.connect(sockserv::inet_endpoint{"127.0.0.1", echo.server_address.port()}, 1.0));
  sockserv::connect_result full = out.connect(sockserv::inet_endpoint{"127.0.0.1", echo.server_address.port()}, 1.0);
  CHECK(!full);
  CHECK(std::string(full.error.message()).find("table full") != std::string::npos);
}
