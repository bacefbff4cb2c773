// event_loop: many connections on one thread. Echo under load with partial
// lines, back-pressure from a client that does not read, idle timeouts,
// a full table, half-close, failures, and the server's hooks.
#include "support/client.hpp"
#include "support/serving_thread.hpp"
#include "support/signals.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <vector>

namespace {

// Observed by the tests; written on the serving thread.
std::atomic<double> idle_limit{0};      // > 0: each connection's idle timeout
std::atomic<std::size_t> most_output{0};  // largest output_pending() seen
std::atomic<int> refused_writes{0};     // write() calls that did not fit

struct echo_event : sockserv::event_request_handler<sockserv::line_framing<>, 256, 512> {
  void setup() {
    if (idle_limit > 0) timeout = idle_limit.load();
  }
  void handle_message(std::string_view line) {
    if (line == "boom\n") throw std::runtime_error("boom");
    if (line == "bye\n") {
      if (!write("bye\n")) ++refused_writes;
      close();
      return;
    }
    if (!write(line)) ++refused_writes;
    if (output_pending() > most_output) most_output = output_pending();
  }
};

template <template <std::size_t> class Poller, std::size_t Capacity>
using echo_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_event,
                                           sockserv::event_loop<Poller, Capacity>>;

struct reset_observations {
  reset_observations() {
    idle_limit = 0;
    most_output = 0;
    refused_writes = 0;
  }
  ~reset_observations() { idle_limit = 0; }
};


}  // namespace

TEMPLATE_TEST_CASE("event_loop echoes hundreds of concurrent clients sending interleaved partial lines",
                   "[event_loop]", (echo_server<sockserv::epoll_poller, 512>),
                   (echo_server<sockserv::poll_poller, 512>), (echo_server<sockserv::select_poller, 512>)) {
  reset_observations scope;
  // select watches descriptors below FD_SETSIZE only: the clients' and the
  // server's descriptors together must stay under it.
  const std::size_t clients = std::string(TestType::poller_name) == "select" ? 200 : 500;
  auto server = test_support::listening<TestType>();
  test_support::serving_thread<TestType> loop(*server);

  std::vector<sockserv::file_descriptor> sockets;
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < clients; ++i) {
    sockets.push_back(test_support::connect_to(server->server_address));
    lines.push_back("client " + std::to_string(i) + " says " + std::string(i % 50, 'x') + "\n");
  }
  // Every client's line goes out in three pieces, round-robin across all.
  for (int piece = 0; piece < 3; ++piece)
    for (std::size_t i = 0; i < clients; ++i) {
      const std::string& line = lines[i];
      std::size_t third = line.size() / 3, from = third * static_cast<std::size_t>(piece);
      std::size_t length = piece == 2 ? line.size() - from : third;
      test_support::send_all(sockets[i].fd(), std::string_view(line).substr(from, length));
    }
  std::size_t right = 0;
  for (std::size_t i = 0; i < clients; ++i) right += test_support::read_line(sockets[i].fd()) == lines[i];
  CHECK(right == clients);
  sockets.clear();
  loop.stop();
  CHECK(refused_writes == 0);
}

TEST_CASE("event_loop: a client that does not read is held back without stalling the others", "[event_loop]") {
  reset_observations scope;
  auto server = test_support::listening<echo_server<sockserv::epoll_poller, 16>>();
  test_support::serving_thread<echo_server<sockserv::epoll_poller, 16>> loop(*server);

  sockserv::file_descriptor slow = test_support::connect_to(server->server_address);
  int modest = 256 * 1024;  // fills sooner than an autotuned buffer, still reads back quickly
  ::setsockopt(slow.fd(), SOL_SOCKET, SO_RCVBUF, &modest, sizeof modest);
  ::fcntl(slow.fd(), F_SETFL, O_NONBLOCK);
  // Send until nothing more goes in: the server stopped reading once its
  // output for this client was full, and the kernel buffers filled up.
  std::string stream_of_lines;
  for (int i = 0; stream_of_lines.size() < 48u * 1024 * 1024; ++i)
    stream_of_lines += "line " + std::to_string(i) + " " + std::string(90, 's') + "\n";
  std::size_t sent = 0;
  for (int stalls = 0; stalls < 50;) {
    REQUIRE(sent < stream_of_lines.size());  // back-pressure must stop this long before
    ssize_t n = ::send(slow.fd(), stream_of_lines.data() + sent, stream_of_lines.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      stalls = 0;
      continue;
    }
    REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
    pollfd writable{slow.fd(), POLLOUT, 0};
    if (::poll(&writable, 1, 20) == 0) ++stalls;  // stalled: the server holds back
  }
  REQUIRE(test_support::wait_readable(slow.fd(), 0));  // echoes wait there, unread
  // Meanwhile another client is served at once.
  sockserv::file_descriptor fast = test_support::connect_to(server->server_address);
  test_support::send_all(fast.fd(), "ping\n");
  CHECK(test_support::read_line(fast.fd()) == "ping\n");

  // The slow client reads at last: every byte comes back, in order.
  ::fcntl(slow.fd(), F_SETFL, 0);
  // (a line cut short by the last send has no end yet: it is not echoed)
  const std::size_t whole_lines = stream_of_lines.rfind('\n', sent - 1) + 1;
  std::string echoed = test_support::read_exactly(slow.fd(), whole_lines, 20000);
  CHECK(echoed.size() == whole_lines);
  CHECK(echoed == stream_of_lines.substr(0, whole_lines));
  CHECK(refused_writes == 0);
  CHECK(most_output <= echo_event::output_capacity);
}

TEST_CASE("event_loop: the idle timeout closes idle clients only", "[event_loop]") {
  reset_observations scope;
  idle_limit = 0.3;
  auto server = test_support::listening<echo_server<sockserv::poll_poller, 16>>();
  test_support::serving_thread<echo_server<sockserv::poll_poller, 16>> loop(*server);
  sockserv::file_descriptor idle = test_support::connect_to(server->server_address);
  sockserv::file_descriptor busy = test_support::connect_to(server->server_address);
  test_support::deadline limit(5000);
  int exchanges = 0;
  while (!test_support::wait_readable(idle.fd(), 0) && limit.remaining_ms() > 0) {
    test_support::send_all(busy.fd(), "still here\n");
    REQUIRE(test_support::read_line(busy.fd()) == "still here\n");
    ++exchanges;
  }
  test_support::read_outcome closed = test_support::read_until_eof(idle.fd(), 1000);
  CHECK(closed.eof);
  CHECK(closed.data.empty());
  CHECK(exchanges > 0);
  test_support::send_all(busy.fd(), "after\n");
  CHECK(test_support::read_line(busy.fd()) == "after\n");  // the busy one lives on
}

TEST_CASE("event_loop: with the table full, new clients wait and are served once a slot frees",
          "[event_loop]") {
  reset_observations scope;
  auto server = test_support::listening<echo_server<sockserv::epoll_poller, 2>>();
  test_support::serving_thread<echo_server<sockserv::epoll_poller, 2>> loop(*server);
  sockserv::file_descriptor first = test_support::connect_to(server->server_address);
  sockserv::file_descriptor second = test_support::connect_to(server->server_address);
  for (auto* c : {&first, &second}) {  // both are in the table
    test_support::send_all(c->fd(), "in\n");
    REQUIRE(test_support::read_line(c->fd()) == "in\n");
  }
  sockserv::file_descriptor third = test_support::connect_to(server->server_address);  // backlog
  test_support::send_all(third.fd(), "third\n");
  CHECK_FALSE(test_support::wait_readable(third.fd(), 200));  // not accepted while full
  first.reset();                                               // a slot frees
  CHECK(test_support::read_line(third.fd()) == "third\n");
  test_support::send_all(second.fd(), "still\n");
  CHECK(test_support::read_line(second.fd()) == "still\n");
}

TEST_CASE("event_loop: half-close, closing from the handler, and end of input", "[event_loop]") {
  reset_observations scope;
  auto server = test_support::listening<echo_server<sockserv::epoll_poller, 8>>();
  test_support::serving_thread<echo_server<sockserv::epoll_poller, 8>> loop(*server);
  SECTION("the client half-closes: queued replies and the unterminated rest still come, then EOF") {
    sockserv::file_descriptor c = test_support::connect_to(server->server_address);
    test_support::send_all(c.fd(), "one\ntwo\nrest");
    REQUIRE(::shutdown(c.fd(), SHUT_WR) == 0);
    test_support::read_outcome reply = test_support::read_until_eof(c.fd());
    CHECK(reply.eof);
    CHECK(reply.data == "one\ntwo\nrest");
  }
  SECTION("the handler closes: its last reply is sent before the connection ends") {
    sockserv::file_descriptor c = test_support::connect_to(server->server_address);
    test_support::send_all(c.fd(), "hello\nbye\nnever\n");
    test_support::read_outcome reply = test_support::read_until_eof(c.fd());
    CHECK(reply.eof);
    CHECK(reply.data == "hello\nbye\n");
  }
}

namespace {
std::atomic<int> errors_seen{0};
std::atomic<bool> refuse_all{false};

struct hooked_server : sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_event,
                                              sockserv::event_loop<sockserv::epoll_poller, 8>, hooked_server> {
  using base = sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_event,
                                      sockserv::event_loop<sockserv::epoll_poller, 8>, hooked_server>;
  using base::base;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) { return !refuse_all; }
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    if (std::string(what) == "boom") ++errors_seen;
  }
};
}  // namespace

TEST_CASE("event_loop keeps the server's hooks: handle_error, verify_request", "[event_loop]") {
  reset_observations scope;
  errors_seen = 0;
  refuse_all = false;
  hooked_server server({"127.0.0.1", 0});
  test_support::serving_thread<hooked_server> loop(server);
  sockserv::file_descriptor bystander = test_support::connect_to(server.server_address);
  {
    sockserv::file_descriptor failing = test_support::connect_to(server.server_address);
    test_support::send_all(failing.fd(), "boom\n");
    test_support::read_outcome reply = test_support::read_until_eof(failing.fd());
    CHECK(reply.eof);
    CHECK(reply.data.empty());
  }
  test_support::send_all(bystander.fd(), "unaffected\n");
  CHECK(test_support::read_line(bystander.fd()) == "unaffected\n");
  refuse_all = true;
  CHECK(test_support::exchange_stream(server.server_address, "refused\n").empty());
  loop.stop();
  CHECK(errors_seen == 1);
}

TEST_CASE("event_loop: shutdown() wakes the loop at once, from a thread or a signal", "[event_loop]") {
  reset_observations scope;
  using server_type = echo_server<sockserv::poll_poller, 8>;
  auto server = test_support::listening<server_type>();
  SECTION("another thread") {
    test_support::serving_thread<server_type> loop(*server, 5.0);
    sockserv::file_descriptor c = test_support::connect_to(server->server_address);
    test_support::send_all(c.fd(), "x\n");
    REQUIRE(test_support::read_line(c.fd()) == "x\n");
    CHECK(loop.stop() < 0.5);
  }
  SECTION("a signal handler") {
    static server_type* target = nullptr;
    target = server.get();
    test_support::scoped_signal_handler on_usr1(SIGUSR1, [](int) { target->request_shutdown(); });
    test_support::serving_thread<server_type> loop(*server, 5.0);
    sockserv::file_descriptor c = test_support::connect_to(server->server_address);
    test_support::send_all(c.fd(), "x\n");
    REQUIRE(test_support::read_line(c.fd()) == "x\n");  // the loop is running
    REQUIRE(::pthread_kill(loop.native_handle(), SIGUSR1) == 0);
    CHECK(loop.wait_finished(std::chrono::milliseconds(2000)));
    CHECK(loop.outcome().ok());
  }
}

TEST_CASE("event_loop: server_close ends every connection and frees the table", "[event_loop]") {
  reset_observations scope;
  using server_type = echo_server<sockserv::epoll_poller, 8>;
  auto server = test_support::listening<server_type>();
  sockserv::file_descriptor c = test_support::connect_to(server->server_address);
  {
    test_support::serving_thread<server_type> loop(*server);
    test_support::send_all(c.fd(), "x\n");
    REQUIRE(test_support::read_line(c.fd()) == "x\n");
  }
  CHECK(server->active_connections() == 1);
  server->server_close();
  CHECK(server->active_connections() == 0);
  CHECK(server->fileno() == -1);
  CHECK(test_support::read_until_eof(c.fd()).eof);
}

namespace {
template <class Family>
using family_echo = sockserv::basic_server<Family, sockserv::stream, echo_event, sockserv::event_loop<>>;
struct datagram_echo : sockserv::datagram_request_handler<> {
  void handle() { wfile.write(packet); }
};
}  // namespace

TEST_CASE("event_loop serves IPv6, unix stream and datagram servers", "[event_loop]") {
  reset_observations scope;
  SECTION("IPv6") {
    family_echo<sockserv::inet6> server({"::1", 0});
    test_support::serving_thread<family_echo<sockserv::inet6>> loop(server);
    sockserv::file_descriptor c = test_support::connect_to(server.server_address);
    test_support::send_all(c.fd(), "six\n");
    CHECK(test_support::read_line(c.fd()) == "six\n");
  }
  SECTION("unix stream") {
    test_support::temp_dir dir;
    family_echo<sockserv::unix_socket> server(dir.file("event.sock"));
    test_support::serving_thread<family_echo<sockserv::unix_socket>> loop(server);
    sockserv::file_descriptor c = test_support::connect_to(server.server_address);
    test_support::send_all(c.fd(), "local\n");
    CHECK(test_support::read_line(c.fd()) == "local\n");
  }
  SECTION("UDP") {
    using server_type = sockserv::basic_server<sockserv::inet4, sockserv::datagram<>, datagram_echo, sockserv::event_loop<>>;
    server_type server({"127.0.0.1", 0});
    test_support::serving_thread<server_type> loop(server);
    CHECK(test_support::exchange_datagram(server.server_address, "packet") == "packet");
  }
}

namespace {
std::atomic<int> select_refusals{0};
struct select_server : sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_event,
                                              sockserv::event_loop<sockserv::select_poller, 8>, select_server> {
  using base = sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_event,
                                      sockserv::event_loop<sockserv::select_poller, 8>, select_server>;
  using base::base;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    if (std::string(what).find("FD_SETSIZE") != std::string::npos) ++select_refusals;
  }
};
}  // namespace

TEST_CASE("event_loop with select refuses a connection whose descriptor fd_set cannot hold, and goes on",
          "[event_loop][select]") {
  reset_observations scope;
  select_refusals = 0;
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  REQUIRE(limit.rlim_max > FD_SETSIZE + 64);  // needed to reach the descriptors select cannot watch
  rlimit raised = limit;
  raised.rlim_cur = FD_SETSIZE + 64;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &raised) == 0);

  select_server server({"127.0.0.1", 0});
  test_support::serving_thread<select_server> loop(server);
  std::vector<int> fillers;  // take every descriptor below FD_SETSIZE
  for (int fd = ::dup(0); fd != -1; fd = ::dup(0)) {
    fillers.push_back(fd);
    if (fd >= FD_SETSIZE + 8) break;
  }
  {
    sockserv::file_descriptor c = test_support::connect_to(server.server_address);
    test_support::send_all(c.fd(), "high\n");
    CHECK(test_support::read_until_eof(c.fd()).data.empty());  // refused and closed
  }
  for (int fd : fillers) ::close(fd);
  sockserv::file_descriptor c = test_support::connect_to(server.server_address);
  test_support::send_all(c.fd(), "low\n");
  CHECK(test_support::read_line(c.fd()) == "low\n");  // still serving
  loop.stop();
  ::setrlimit(RLIMIT_NOFILE, &limit);
  CHECK(select_refusals >= 1);
}
