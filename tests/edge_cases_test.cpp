// Correctness at the edges: 32-bit length prefixes, IPv6 scope ids, timeouts
// that are infinite or NaN, the default backlog, a stale-socket probe that
// must not block, datagram replies too big for wfile, and the signals a
// worker thread leaves unblocked.
#include "support/client.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <net/if.h>
#include <string>
#include <sys/un.h>
#include <vector>

using namespace test_support;

TEST_CASE("length_prefix_framing<4>: declared lengths 0xFFFFFFFC..0xFFFFFFFF are malformed on every word size") {
  for (unsigned last = 0xFC; last <= 0xFF; ++last) {
    std::string input = std::string("\xFF\xFF\xFF", 3) + static_cast<char>(last) + "payload";
    sockserv::frame cut = sockserv::length_prefix_framing<4>::extract(input, 2048);
    INFO("last header byte " << last);
    CHECK(cut.malformed);
    CHECK(cut.consumed == 0);
  }
  // The largest length that fits is still a message.
  std::string fits = std::string("\0\0\0\x03", 4) + "abc";
  sockserv::frame whole = sockserv::length_prefix_framing<4>::extract(fits, 7);
  CHECK_FALSE(whole.malformed);
  CHECK(whole.message == "abc");
  CHECK(sockserv::length_prefix_framing<4>::extract(fits, 6).malformed);
}

TEST_CASE("IPv6: a scope id is parsed as a number or an interface name and printed") {
  sockserv::socket_address numeric;
  REQUIRE(sockserv::inet6::parse({"fe80::1%1", 9}, numeric));
  CHECK(numeric.as<sockaddr_in6>().sin6_scope_id == 1);
  CHECK(std::string(numeric.host().c_str()) == "fe80::1%1");
  CHECK(std::string(numeric.to_string().c_str()) == "[fe80::1%1]:9");

  const unsigned loopback = ::if_nametoindex("lo");
  REQUIRE(loopback != 0);
  sockserv::socket_address named;
  REQUIRE(sockserv::inet6::parse({"[fe80::2%lo]", 9}, named));
  CHECK(named.as<sockaddr_in6>().sin6_scope_id == loopback);
  CHECK(std::string(named.host().c_str()) == "fe80::2%" + std::to_string(loopback));

  sockserv::socket_address unknown;
  CHECK_FALSE(sockserv::inet6::parse({"fe80::1%no-such-interface0", 9}, unknown));
  sockserv::socket_address plain;
  REQUIRE(sockserv::inet6::parse({"::1", 9}, plain));
  CHECK(std::string(plain.host().c_str()) == "::1");
}

TEST_CASE("timeouts: NaN and infinity convert without undefined behaviour") {
  CHECK(sockserv::detail::to_poll_ms(std::nan("")) == -1);
  CHECK(sockserv::detail::to_poll_ms(HUGE_VAL) == 2147483000);
  CHECK(sockserv::detail::to_poll_ms(1e300) == 2147483000);
  CHECK(sockserv::detail::to_poll_ms(-HUGE_VAL) == -1);
  CHECK(sockserv::detail::to_poll_ms(0.0001) == 1);
}

namespace {
struct infinite_timeout_echo : sockserv::stream_request_handler<> {
  infinite_timeout_echo() { timeout = HUGE_VAL; }
  void handle() { wfile.write(rfile.readline()); }
};
}  // namespace

TEST_CASE("timeouts: an infinite handler timeout means no timeout") {
  using server_type = sockserv::tcp_server<infinite_timeout_echo>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server);
  CHECK(exchange_stream(server->server_address, "hi\n") == "hi\n");
}

TEST_CASE("stream servers listen with a backlog of SOMAXCONN by default") {
  using server_type = sockserv::tcp_server<sockserv::stream_request_handler<>>;
  server_type server({"127.0.0.1", 0});
  CHECK(server.request_queue_size == SOMAXCONN);
  // 64 clients connect at once while nobody accepts: none waits for a SYN
  // retry (with Python's 5, the seventh would).
  const auto start = std::chrono::steady_clock::now();
  std::vector<sockserv::file_descriptor> clients;
  for (int i = 0; i < 64; ++i) clients.push_back(connect_to(server.server_address));
  INFO("64 connects took " << seconds_since(start) << " s");
  CHECK(seconds_since(start) < 0.9);  // a SYN retry takes 1 s
}

TEST_CASE("remove_stale_unix_socket does not block on a live server whose backlog is full") {
  temp_dir dir;
  const char* path = dir.file("live.sock");
  sockserv::file_descriptor live(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
  REQUIRE(::bind(live.fd(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(live.fd(), 0) == 0);
  std::vector<sockserv::file_descriptor> fillers;  // until a connect would block
  for (int i = 0; i < 64; ++i) {
    sockserv::file_descriptor filler(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (::connect(filler.fd(), reinterpret_cast<sockaddr*>(&address), sizeof address) == -1) break;
    fillers.push_back(std::move(filler));
  }
  using server_type = sockserv::unix_stream_server<sockserv::stream_request_handler<>>;
  server_type server(path, false);
  server.remove_stale_unix_socket = true;
  const auto start = std::chrono::steady_clock::now();
  sockserv::result bound = server.server_bind();
  CHECK(seconds_since(start) < 1.0);
  CHECK_FALSE(bound.ok());
  CHECK(bound.code() == EADDRINUSE);  // the live server's file stayed
  struct stat info {};
  CHECK(::lstat(path, &info) == 0);
}

namespace {
// Its second write does not fit the 16-byte wfile.
struct oversized_reply_handler : sockserv::datagram_request_handler<16> {
  void handle() {
    if (packet == "big") {
      wfile.write("0123456789");
      CHECK(wfile.write("0123456789") == -1);
    } else if (packet == "huge") {
      CHECK(wfile.write("0123456789abcdefXYZ") == -1);  // refused whole: nothing written
    } else {
      wfile.write("small");
    }
  }
};
struct reporting_udp_server : sockserv::udp_server<oversized_reply_handler, reporting_udp_server> {
  using basic_server::basic_server;
  int errors = 0;
  std::string last_error;
  void handle_error(sockserv::datagram_request&, const sockserv::socket_address&, const char* what) {
    ++errors;
    last_error = what;
  }
};
}  // namespace

TEST_CASE("a datagram reply that does not fit wfile is never sent, empty or cut short, and is reported") {
  reporting_udp_server server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  for (const char* request : {"big", "huge"}) {
    send_datagram(client.fd(), server.server_address, request);
    REQUIRE(server.handle_request());
  }
  send_datagram(client.fd(), server.server_address, "ok");
  REQUIRE(server.handle_request());
  // The server answers in order: the first datagram to arrive is the
  // reply to "ok", so neither oversized reply went out.
  REQUIRE(wait_readable(client.fd(), io_timeout_ms));
  char reply[64];
  ssize_t n = ::recv(client.fd(), reply, sizeof reply, 0);
  CHECK(std::string(reply, n > 0 ? static_cast<std::size_t>(n) : 0) == "small");
  CHECK(server.errors == 2);
  CHECK(server.last_error.find("wbufsize") != std::string::npos);
}

namespace {
struct signal_mask_handler : sockserv::stream_request_handler<> {
  void handle() {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL})
      wfile.write(sigismember(&mask, fault) ? "blocked " : "open ");
    wfile.write(sigismember(&mask, SIGTERM) ? "term-blocked\n" : "term-open\n");
  }
};
}  // namespace

TEST_CASE("threading: workers block SIGTERM but not the fault signals a crash handler must see") {
  using server_type = sockserv::threading_tcp_server<signal_mask_handler>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server);
  sockserv::file_descriptor client = connect_to(server->server_address);
  CHECK(read_until_eof(client.fd()).data == "open open open open term-blocked\n");
}

namespace {
// Reports how each readline() ended: limit (readline(4)), then end of input
// or timeout — the client decides which by half-closing or waiting.
struct line_end_reporter : sockserv::stream_request_handler<> {
  line_end_reporter() { timeout = 0.3; }
  static const char* name(sockserv::line_end end) {
    switch (end) {
      case sockserv::line_end::newline: return "newline";
      case sockserv::line_end::limit: return "limit";
      case sockserv::line_end::end_of_input: return "end_of_input";
      case sockserv::line_end::timed_out: return "timed_out";
      default: return "failed";
    }
  }
  void handle() {
    sockserv::text_line first = rfile.readline(4);
    std::string report = std::string(first) + ":" + name(first.ending) + " ";  // the view lasts until the next read
    sockserv::text_line second = rfile.readline();
    wfile.write(report + std::string(second) + ":" + name(second.ending) + "\n");
  }
};
}  // namespace

TEST_CASE("readline(): limit reached, end of input and timeout are told apart by its result") {
  using server_type = sockserv::tcp_server<line_end_reporter>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server);
  {
    sockserv::file_descriptor client = connect_to(server->server_address);
    send_all(client.fd(), "abcdef");
    ::shutdown(client.fd(), SHUT_WR);
    CHECK(read_until_eof(client.fd()).data == "abcd:limit ef:end_of_input\n");
  }
  {
    sockserv::file_descriptor client = connect_to(server->server_address);
    send_all(client.fd(), "abcdef");  // and then nothing: the handler's 0.3 s timeout
    CHECK(read_until_eof(client.fd()).data == "abcd:limit ef:timed_out\n");
  }
  {
    sockserv::file_descriptor client = connect_to(server->server_address);
    send_all(client.fd(), "ab\ncd\n");
    CHECK(read_until_eof(client.fd()).data == "ab\n:newline cd\n:newline\n");
  }
}
