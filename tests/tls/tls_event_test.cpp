// tls_stream under event_loop<>: a BearSSL client against event servers on
// loopback. The handshake runs by readiness before setup(); handlers see
// plaintext and who the client is; the cap and the deadline bound
// handshakes; failures are reported, counted, and free their slots;
// close_notify ends every clean close; a bare TCP end is a truncation.
#include "tls_support.hpp"

#include "support/client.hpp"
#include "support/serving_thread.hpp"

#include <catch2/catch.hpp>

#include <sockserv/tls.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace tls_support;
using test_support::serving_thread;

namespace {

event_log handler_log;  // what handlers saw
event_log error_log;    // what handle_error got

// What a test wants done for a line starting with '!' (on the loop thread).
std::function<void(sockserv::event_connection&, std::string_view)> command;

// Echoes lines; logs who the client is (in setup, after the handshake)
// and how the session ended.
struct event_echo : sockserv::event_request_handler<> {
  void setup() {
    // Runs on the serving thread: the test checks the log, not Catch2 here.
    sockserv::tls::session_core* session = sockserv::tls::session_of(request);
    if (session == nullptr || !session->handshake_done()) return handler_log.add("setup without a finished handshake");
    const char* alpn = session->alpn();
    handler_log.add(std::string("subject=") + session->peer_subject() + " sni=" + session->server_name() +
                    " alpn=" + (alpn ? alpn : "-") + " resumed=" + (session->resumed() ? "yes" : "no"));
  }
  void handle_message(std::string_view line) {
    if (line.substr(0, 1) == "!" && command) return command(*this, line);
    if (line == "bye\n") return close();
    if (!write(line)) abort();
  }
  void handle_eof() {
    handler_log.add("end=clean");
    close();
  }
  void finish() {
    sockserv::tls::session_core* session = sockserv::tls::session_of(request);
    if (session != nullptr && session->truncated()) handler_log.add("finish: truncated");
  }
};

// Each slot holds a TLS session (41 KB): test servers have few slots and
// live on the heap (made()).
template <class Tls, class Loop = sockserv::event_loop<sockserv::epoll_poller, 8>>
struct event_server
    : sockserv::basic_server<sockserv::inet4, Tls, event_echo, Loop, event_server<Tls, Loop>> {
  using base = sockserv::basic_server<sockserv::inet4, Tls, event_echo, Loop, event_server<Tls, Loop>>;
  event_server() : base({"127.0.0.1", 0}) {}
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) { error_log.add(what); }
};

struct quick_config : sockserv::tls::default_config {
  static constexpr int handshake_timeout_ms = 400;
};
struct capped_config : quick_config {
  static constexpr unsigned max_handshakes = 1;
};
struct mutual_config : quick_config {};
struct alpn_config : quick_config {};

template <class Server>
std::unique_ptr<Server> made() {
  return std::make_unique<Server>();
}


// A client that starts a handshake and stops: three bytes of a record header.
sockserv::file_descriptor stalled_handshake(const sockserv::socket_address& server) {
  sockserv::file_descriptor raw = test_support::connect_to(server);
  test_support::send_all(raw.fd(), std::string_view("\x16\x03\x01", 3));
  return raw;
}

struct clear_logs {
  clear_logs() {
    handler_log.clear();
    error_log.clear();
    command = nullptr;
  }
  ~clear_logs() { command = nullptr; }
};

}  // namespace

TEST_CASE("tls event: echo, SNI/ALPN in setup(), resumption, close_notify both ways, handle_eof on a clean end",
          "[tls][event_loop]") {
  using tls = sockserv::tls_stream<alpn_config>;
  load_server<tls>();
  static const char* const protocols[] = {"sockserv/1", "http/1.1"};
  tls::context().set_alpn(protocols, 2);
  clear_logs logs;
  auto owned = made<event_server<tls>>();
  auto& server = *owned;
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
  br_ssl_session_parameters saved{};
  for (int round = 0; round < 2; ++round) {
    client_options options;
    options.alpn = {"h2", "sockserv/1"};
    options.resume = &saved;
    tls_client client(server.server_address, ca_anchors(), options);
    REQUIRE(client.send("hello\n"));
    CHECK(client.read_line() == "hello\n");
    REQUIRE(client.send("two\nlines\n"));
    CHECK(client.read_line() == "two\n");
    CHECK(client.read_line() == "lines\n");
    CHECK(client.close_cleanly());  // our close_notify answered with the server's
    handler_log.wait_for(round == 0 ? 2u : 4u);
  }
  std::vector<std::string> seen = handler_log.wait_for(4);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == "subject= sni=localhost alpn=sockserv/1 resumed=no");
  CHECK(seen[1] == "end=clean");
  CHECK(seen[2] == "subject= sni=localhost alpn=sockserv/1 resumed=yes");
  CHECK(seen[3] == "end=clean");
  serving.stop();
  CHECK(server.stats().failed == 0);
  CHECK(server.active_connections() == 0);
}

TEST_CASE("tls event: many TLS clients at once on one loop; broadcast, write_to and close_connection reach them",
          "[tls][event_loop]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  clear_logs logs;
  using server_type = event_server<tls, sockserv::event_loop<sockserv::epoll_poller, 32>>;
  auto owned = made<server_type>();
  server_type& server = *owned;
  std::mutex ids_lock;
  std::vector<sockserv::connection_id> ids;  // in the order the clients said "!id"
  command = [&](sockserv::event_connection& self, std::string_view line) {
    server_type& s = server;
    if (line == "!id\n") {
      std::lock_guard<std::mutex> hold(ids_lock);
      ids.push_back(self.id());
      (void)self.write("ok\n");
    } else if (line == "!broadcast\n") {
      sockserv::broadcast_result sent = s.broadcast("news\n");
      (void)self.write(sent.written == 16 ? "sent to 16\n" : "sent to fewer\n");
    } else if (line == "!second\n") {
      std::lock_guard<std::mutex> hold(ids_lock);
      (void)s.write_to(ids.at(1), "just for you\n");
    } else if (line == "!close-first\n") {
      std::lock_guard<std::mutex> hold(ids_lock);
      (void)s.close_connection(ids.at(0));
    }
  };
  serving_thread<server_type> serving(server);

  // 16 sessions open together, each exchanging lines from its own thread.
  constexpr int clients = 16;
  std::vector<std::unique_ptr<tls_client>> c;
  for (int i = 0; i < clients; ++i) {
    c.push_back(std::make_unique<tls_client>(server.server_address, ca_anchors()));
    REQUIRE(c.back()->send("!id\n"));
    REQUIRE(c.back()->read_line() == "ok\n");
  }
  {
    std::vector<int> echoed(clients, 0);
    std::vector<std::unique_ptr<test_support::joining_thread>> threads;
    for (int i = 0; i < clients; ++i)
      threads.push_back(std::make_unique<test_support::joining_thread>([&, i] {
        for (int n = 0; n < 20; ++n) {
          const std::string line = "client " + std::to_string(i) + " line " + std::to_string(n) + "\n";
          if (c[static_cast<std::size_t>(i)]->send(line) && c[static_cast<std::size_t>(i)]->read_line() == line)
            ++echoed[static_cast<std::size_t>(i)];
        }
      }));
    threads.clear();  // joins
    for (int i = 0; i < clients; ++i) CHECK(echoed[static_cast<std::size_t>(i)] == 20);
  }
  REQUIRE(c[3]->send("!broadcast\n"));
  for (int i = 0; i < clients; ++i) CHECK(c[static_cast<std::size_t>(i)]->read_line() == "news\n");
  CHECK(c[3]->read_line() == "sent to 16\n");
  REQUIRE(c[5]->send("!second\n"));
  CHECK(c[1]->read_line() == "just for you\n");
  REQUIRE(c[5]->send("!close-first\n"));
  CHECK(c[0]->reads_to_close_notify());  // closed from another connection's callback: cleanly
  for (int i = 1; i < clients; ++i) CHECK(c[static_cast<std::size_t>(i)]->close_cleanly());
  c.clear();
  serving.stop();
  CHECK(server.stats().accepted == clients);
  CHECK(server.stats().failed == 0);
  CHECK(server.stats().peak_in_flight == clients);
}

TEST_CASE("tls event: a server-side close sends close_notify; a bare TCP end is a truncation, not a clean end",
          "[tls][event_loop]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  clear_logs logs;
  auto owned = made<event_server<tls>>();
  auto& server = *owned;
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
  SECTION("the handler closes") {
    tls_client client(server.server_address, ca_anchors());
    REQUIRE(client.send("last words\nbye\n"));
    CHECK(client.read_line() == "last words\n");
    CHECK(client.reads_to_close_notify());
  }
  SECTION("the client ends TCP without close_notify") {
    tls_client client(server.server_address, ca_anchors());
    REQUIRE(client.send("cut\n"));
    CHECK(client.read_line() == "cut\n");
    ::shutdown(client.fd(), SHUT_WR);
    std::string message = error_log.wait_for(1).at(0);
    INFO(message);
    CHECK(contains(message, "truncated"));
    CHECK(handler_log.wait_for(2).at(1) == "finish: truncated");  // and no handle_eof()
    CHECK_FALSE(client.reads_to_close_notify());
    serving.stop();
    CHECK(server.stats().failed == 1);
  }
  serving.stop();
  CHECK(server.active_connections() == 0);
}

TEST_CASE("tls event: failed handshakes reach handle_error, are counted, and free their slots", "[tls][event_loop]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  clear_logs logs;
  auto owned = made<event_server<tls, sockserv::event_loop<sockserv::poll_poller, 2>>>();  // two slots
  auto& server = *owned;
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);

  constexpr int failures = 10;  // five times the table
  for (int i = 0; i < failures; ++i) {
    sockserv::file_descriptor plain = test_support::connect_to(server.server_address);
    test_support::send_all(plain.fd(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(test_support::read_until_eof(plain.fd()).eof);
  }
  std::vector<std::string> messages = error_log.wait_for(failures);
  REQUIRE(messages.size() == failures);
  for (const std::string& message : messages) {
    INFO(message);
    CHECK(contains(message, "TLS handshake failed"));
    CHECK(contains(message, "plaintext on a TLS port"));
  }
  {  // a client that does not trust the server hangs up mid-handshake
    test_credentials other;
    load_anchors(other, certificates::get().path("rogue.pem"));
    tls_client client(server.server_address, other);
    CHECK_FALSE(client.send("x\n"));
  }
  CHECK(contains(error_log.wait_for(failures + 1).at(failures), "TLS handshake failed"));
  still_serves(server);
  still_serves(server);
  serving.stop();
  CHECK(server.stats().failed == failures + 1);
  CHECK(server.stats().accepted == failures + 3);
  CHECK(server.active_connections() == 0);
  CHECK(tls::context().handshakes_in_progress() == 0);
  CHECK(handler_log.wait_for(0).size() == 4);  // setup ran only for the two good clients (and their ends)
}

TEST_CASE("tls event: a stalled handshake is cut off at its deadline", "[tls][event_loop]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  clear_logs logs;
  auto owned = made<event_server<tls>>();
  auto& server = *owned;
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
  auto start = std::chrono::steady_clock::now();
  sockserv::file_descriptor raw = stalled_handshake(server.server_address);
  std::string message = error_log.wait_for(1).at(0);
  INFO(message);
  CHECK(contains(message, "TLS handshake failed: no progress within 400 ms (stalled client)"));
  CHECK(test_support::read_until_eof(raw.fd()).eof);
  CHECK(test_support::seconds_since(start) < 4.0);  // generous: the deadline is 0.4 s
  still_serves(server);
  serving.stop();
  CHECK(server.stats().timed_out == 1);
  CHECK(server.active_connections() == 0);
  CHECK(handler_log.wait_for(0).size() == 2);  // the good client only: no setup() for the staller
}

TEST_CASE("tls event: handshakes beyond the cap are refused and counted; served again once it frees",
          "[tls][event_loop]") {
  using tls = sockserv::tls_stream<capped_config>;
  load_server<tls>();
  clear_logs logs;
  auto owned = made<event_server<tls>>();
  auto& server = *owned;
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
  const unsigned long refused_before = tls::context().refused_handshakes();
  sockserv::file_descriptor staller = stalled_handshake(server.server_address);  // holds the only place
  {
    sockserv::file_descriptor second = test_support::connect_to(server.server_address);
    std::string message = error_log.wait_for(1).at(0);
    CHECK(contains(message, "refused, 1 handshakes already in progress"));
    CHECK(test_support::read_until_eof(second.fd()).eof);
  }
  CHECK(contains(error_log.wait_for(2).at(1), "no progress within"));  // the staller's deadline
  CHECK(tls::context().handshakes_in_progress() == 0);
  CHECK(tls::context().refused_handshakes() == refused_before + 1);
  still_serves(server);
  serving.stop();
  CHECK(server.stats().failed == 1);
  CHECK(server.stats().timed_out == 1);
  CHECK(server.active_connections() == 0);
}

TEST_CASE("tls event: client certificates, accepted (subject in setup) and refused", "[tls][event_loop]") {
  using tls = sockserv::tls_stream<mutual_config>;
  load_server<tls>();
  certificates& certs = certificates::get();
  REQUIRE(tls::context().require_client_certificates(certs.path("ca.pem").c_str()));
  clear_logs logs;
  auto owned = made<event_server<tls>>();
  auto& server = *owned;
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
  serves_the_device(server);
  CHECK(contains(handler_log.wait_for(1).at(0), "subject=CN=device-1,OU=devices,O=sockserv,C=CH "));
  {
    tls_client client(server.server_address, ca_anchors());  // no certificate
    CHECK_FALSE((client.send("x\n") && client.read_line() == "x\n"));
  }
  std::string message = error_log.wait_for(1).at(0);
  INFO(message);
  CHECK(contains(message, "sent no certificate"));
  serving.stop();
  CHECK(server.stats().failed == 1);
  CHECK(server.active_connections() == 0);
}

TEST_CASE("tls event: graceful_close keeps its deadline, and every TLS connection it ends gets close_notify",
          "[tls][event_loop]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  clear_logs logs;
  auto owned = made<event_server<tls>>();
  auto& server = *owned;
  command = [](sockserv::event_connection& self, std::string_view) {  // "!more": a 2000-byte reply
    static const std::string reply(1999, 'm');
    (void)self.write(reply + "\n");
  };
  serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
  sockserv::file_descriptor staller = stalled_handshake(server.server_address);
  tls_client client(server.server_address, ca_anchors());  // answered: the staller (before it) was accepted
  REQUIRE(client.send("ping\n"));
  REQUIRE(client.read_line() == "ping\n");

  SECTION("connections that end in time: true, once the last has ended") {
    REQUIRE(client.send("last\nbye\n"));  // read by the drain after serving stops
    serving.stop();
    auto start = std::chrono::steady_clock::now();
    CHECK(server.graceful_close(3.0));  // the staller ends at its 0.4 s handshake deadline
    CHECK(test_support::seconds_since(start) < 2.0);
    CHECK(client.read_line() == "last\n");
    CHECK(client.reads_to_close_notify());
    CHECK(test_support::read_until_eof(staller.fd()).eof);
  }
  SECTION("an idle client and one that reads nothing: false at the deadline, close_notify to the idle one") {
    tls_client stuck(server.server_address, ca_anchors());
    const int small = 4096;
    REQUIRE(::setsockopt(stuck.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    REQUIRE(stuck.send("ping\n"));
    REQUIRE(stuck.read_line() == "ping\n");
    std::string asks;
    for (int i = 0; i < 1000; ++i) asks += "!more\n";  // 2 MB of replies it never reads
    REQUIRE(stuck.send(asks));
    serving.stop();
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(server.graceful_close(0.5));
    CHECK(test_support::seconds_since(start) < 3.0);  // generous: the deadline is 0.5 s
    CHECK(client.reads_to_close_notify());  // server_close at the deadline ends it cleanly
    CHECK(test_support::read_until_eof(staller.fd()).eof);
  }
  CHECK(server.active_connections() == 0);
  CHECK(tls::context().handshakes_in_progress() == 0);
}

TEST_CASE("tls event: a TLS server joined to a shared loop serves beside a plain one", "[tls][event_loop]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  clear_logs logs;
  struct plain_echo : sockserv::event_request_handler<> {
    void handle_message(std::string_view line) {
      (void)write(line);
      close();
    }
  };
  sockserv::basic_loop<> loop;
  auto owned = made<event_server<tls>>();
  auto& secure = *owned;
  using plain_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, plain_echo, sockserv::event_loop<>>;
  auto plain_owned = std::make_unique<plain_server>(plain_server::endpoint{"127.0.0.1", 0});
  plain_server& plain = *plain_owned;
  REQUIRE(loop.add(secure));
  REQUIRE(loop.add(plain));
  test_support::joining_thread running([&] { (void)loop.serve_forever(); });
  tls_client client(secure.server_address, ca_anchors());
  REQUIRE(client.send("over TLS\n"));
  CHECK(client.read_line() == "over TLS\n");
  CHECK(test_support::exchange_stream(plain.server_address, "in the clear\n") == "in the clear\n");
  CHECK(client.close_cleanly());
  secure.shutdown();  // stops the shared loop
  running.join();
}

namespace {
struct sized_handler : sockserv::event_request_handler<> {};
// What one slot adds to a server: the difference between 16 and 8 slots.
template <class SocketType>
constexpr std::size_t per_slot() {
  using small = sockserv::basic_server<sockserv::inet4, SocketType, sized_handler, sockserv::event_loop<sockserv::epoll_poller, 8>>;
  using large = sockserv::basic_server<sockserv::inet4, SocketType, sized_handler, sockserv::event_loop<sockserv::epoll_poller, 16>>;
  return (sizeof(large) - sizeof(small)) / 8;
}
}  // namespace

TEST_CASE("tls event: a slot costs its TLS session and its handler, plus a little bookkeeping (README figures)",
          "[tls][event_loop]") {
  using tls = sockserv::tls_stream<>;
  constexpr std::size_t secured = per_slot<tls>();
  constexpr std::size_t plain = per_slot<sockserv::stream>();
  CHECK(secured - plain >= sizeof(tls::event_transport));
  CHECK(secured - plain <= sizeof(tls::event_transport) + 16);  // the slot's "built" flag and padding
  CHECK(plain >= sizeof(sized_handler));
  CHECK(plain <= sizeof(sized_handler) + 512);  // slot state, watcher, timer, the loop's entry
  if (sizeof(void*) == 8) {  // the README's x86_64 figures (bench/tls/footprint.cpp prints them)
    CHECK(secured == 47962);
    CHECK(plain == 6737);
  }
}

TEST_CASE("tls event: the server itself holds no TLS session, only its slots do", "[tls][event_loop]") {
  using tls = sockserv::tls_stream<>;
  using secured_server = sockserv::basic_server<sockserv::inet4, tls, sized_handler, sockserv::event_loop<sockserv::epoll_poller, 8>>;
  using plain_server =
      sockserv::basic_server<sockserv::inet4, sockserv::stream, sized_handler, sockserv::event_loop<sockserv::epoll_poller, 8>>;
  // What is left of each server without its 8 slots.
  constexpr std::size_t secured_rest = sizeof(secured_server) - 8 * per_slot<tls>();
  constexpr std::size_t plain_rest = sizeof(plain_server) - 8 * per_slot<sockserv::stream>();
  CHECK(secured_rest <= plain_rest + 64);  // alignment; a blocking session would be 41 KB more
  CHECK(sizeof(tls::receive_buffer) >= sizeof(sockserv::tls::session<>));  // what it used to hold, unused
}
