// Event connections' deadlines (event_loop.hpp): the first-message deadline
// and the lifetime cut off clients the idle timeout cannot (a trickler, a
// chatterbox), while honest clients are served; and a malformed frame
// closes a connection only after the replies already queued.
#include "support/client.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <limits>
#include <thread>

namespace {

struct guarded_echo : sockserv::event_request_handler<> {
  guarded_echo() {
    timeout = 0.3;                // idle
    first_message_timeout = 0.6;  // a complete line within 0.6 s of connecting
    lifetime = 1.5;
  }
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
  }
};
using guarded_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, guarded_echo, sockserv::event_loop<>>;

// Sends one byte every interval until the server closes; returns how long
// the connection lasted.
double trickle(int fd, std::chrono::milliseconds interval, char byte) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1) break;
    if (test_support::wait_readable(fd, static_cast<int>(interval.count()))) {
      char sink[256];
      ssize_t n = ::recv(fd, sink, sizeof sink, 0);
      if (n <= 0) break;  // closed by the server
    }
  }
  return test_support::seconds_since(start);
}

}  // namespace

TEST_CASE("event deadlines: a client trickling a line byte by byte is cut off by the first-message deadline",
          "[event_loop][deadline]") {
  auto server = test_support::listening<guarded_server>();
  test_support::serving_thread<guarded_server> serving(*server);
  sockserv::file_descriptor trickler = test_support::connect_to(server->server_address);
  double lasted = 0;
  std::thread slow([&] { lasted = trickle(trickler.fd(), std::chrono::milliseconds(100), 'x'); });
  // Meanwhile an honest client is served at once.
  sockserv::file_descriptor honest = test_support::connect_to(server->server_address);
  test_support::send_all(honest.fd(), "hello\n");
  CHECK(test_support::read_line(honest.fd()) == "hello\n");
  slow.join();
  CHECK(lasted >= 0.5);  // never idle for the 0.3 s idle timeout: the 0.6 s deadline did it
  CHECK(lasted < 3.0);
}

TEST_CASE("event deadlines: a busy client is closed at the end of its lifetime", "[event_loop][deadline]") {
  auto server = test_support::listening<guarded_server>();
  test_support::serving_thread<guarded_server> serving(*server);
  sockserv::file_descriptor chatty = test_support::connect_to(server->server_address);
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {
    if (::send(chatty.fd(), "hi\n", 3, MSG_NOSIGNAL) != 3) break;
    std::string reply = test_support::read_line(chatty.fd(), 1000);
    closed = reply != "hi\n";
    if (!closed) test_support::wait_readable(chatty.fd(), 100);  // a line every 0.1 s: never idle
  }
  const double lasted = test_support::seconds_since(start);
  CHECK(closed);
  CHECK(lasted >= 1.4);
  CHECK(lasted < 4.0);
}

namespace {
struct framed_echo : sockserv::event_request_handler<sockserv::length_prefix_framing<2>, 64, 256> {
  void handle_message(std::string_view payload) {
    if (!write(payload)) abort();
  }
};
using framed_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, framed_echo, sockserv::event_loop<>>;
}  // namespace

TEST_CASE("event deadlines: a malformed frame closes the connection after the replies already queued",
          "[event_loop][framing]") {
  auto server = test_support::listening<framed_server>();
  test_support::serving_thread<framed_server> serving(*server);
  sockserv::file_descriptor c = test_support::connect_to(server->server_address);
  // Two good frames and one declaring 1000 bytes (the buffer holds 64), in one send.
  const std::string input = std::string("\0\3one\0\3two\x03\xe8", 12);
  test_support::send_all(c.fd(), input);
  test_support::read_outcome rest = test_support::read_until_eof(c.fd(), 3000);
  CHECK(rest.data == "onetwo");
  CHECK(rest.eof);
}

namespace {
// "nan\n" as the first line makes this connection's idle timeout NaN;
// every other connection keeps 0.1 s.
struct nan_or_short_timeout : sockserv::event_request_handler<> {
  nan_or_short_timeout() { timeout = 0.1; }
  void handle_message(std::string_view line) {
    if (line == "nan\n") timeout = std::numeric_limits<double>::quiet_NaN();
    if (!write(line)) abort();
  }
};
using nan_server =
    sockserv::basic_server<sockserv::inet4, sockserv::stream, nan_or_short_timeout, sockserv::event_loop<>>;
}  // namespace

TEST_CASE("event deadlines: a NaN timeout means never, as for a blocking handler's", "[event_loop][deadline]") {
  auto server = test_support::listening<nan_server>();
  test_support::serving_thread<nan_server> serving(*server);
  sockserv::file_descriptor never = test_support::connect_to(server->server_address);
  test_support::send_all(never.fd(), "nan\n");
  CHECK(test_support::read_line(never.fd()) == "nan\n");
  // A connection with the 0.1 s idle timeout, opened after, is closed by
  // it: by then the NaN one has been idle longer.
  sockserv::file_descriptor short_lived = test_support::connect_to(server->server_address);
  test_support::send_all(short_lived.fd(), "hi\n");
  CHECK(test_support::read_line(short_lived.fd()) == "hi\n");
  CHECK(test_support::read_until_eof(short_lived.fd(), 3000).eof);
  test_support::send_all(never.fd(), "still open\n");
  CHECK(test_support::read_line(never.fd()) == "still open\n");
  CHECK(server->stats().timed_out == 1);
}
