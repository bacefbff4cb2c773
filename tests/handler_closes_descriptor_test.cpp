// A handler that closes request.fd itself (fclose(fdopen(request.fd))) under
// every policy: its reply still reaches its own client (an event connection
// goes on), the number it freed — and that another socket or file then got —
// is never written to, shut down or closed by the server, and no descriptor
// leaks; a handler that never reads request.fd costs no descriptor for it
// (sockserv/handler_connection.hpp).
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/loops.hpp"  // descriptor_pair
#include "support/processes.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>

using namespace test_support;

namespace {

// Closes the handler's request.fd the way C code does it, through stdio.
int close_through_stdio(int fd) {
  std::FILE* stream = ::fdopen(fd, "r+");
  return stream == nullptr ? -1 : std::fclose(stream);
}

// Puts /dev/null at descriptor number `number` (just freed: the lowest free
// number at or above it). Returns the descriptor, -1 if it landed elsewhere.
int occupy_number(int number) {
  const int any = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (any == number || any < 0) return any == number ? any : -1;  // the lowest free number was this one
  const int moved = ::fcntl(any, F_DUPFD_CLOEXEC, number);
  ::close(any);
  if (moved != number && moved >= 0) ::close(moved);
  return moved == number ? moved : -1;
}

bool is_character_device(int fd) {
  struct stat info {};
  return ::fstat(fd, &info) == 0 && S_ISCHR(info.st_mode);
}

// The /dev/null a handler left at its freed number (-1: none).
std::atomic<int> left_at_number{-1};

// Closes request.fd, puts a file of its own at that number, then replies
// through wfile: the reply says whether the number was reused.
struct number_reusing_handler : sockserv::stream_request_handler<> {
  void handle() {
    (void)rfile.readline();
    const int number = request.fd;
    const bool closed = close_through_stdio(number) == 0;
    const int reused = occupy_number(number);
    left_at_number = reused;
    wfile.write(closed && reused >= 0 ? "reply, number reused\n" : "reply, number not reused\n");
  }
};

}  // namespace

TEMPLATE_TEST_CASE("a handler that closes request.fd and reuses the number still replies to its own client",
                   "[ownership]", sockserv::synchronous, sockserv::threading<2>, sockserv::forking<2>) {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, number_reusing_handler, TestType>;
  auto server = listening<server_type>();
  left_at_number = -1;
  const std::size_t before = open_descriptor_count();
  {
    serving_thread<server_type> serving(*server, 0.05);
    for (int round = 0; round < 3; ++round) {
      CHECK(exchange_stream(server->server_address, "hello\n") == "reply, number reused\n");
      if (!std::is_same_v<TestType, sockserv::forking<2>>) {  // a child's file is the child's
        CHECK(eventually([&] { return left_at_number.load() >= 0; }, 5.0));
        const int kept = left_at_number.exchange(-1);
        CHECK(is_character_device(kept));  // still the handler's /dev/null: the server left it alone
        if (kept >= 0) ::close(kept);
      }
    }
    serving.stop();
    CHECK(server->graceful_close(5.0));
  }
  CHECK(open_descriptor_count() == before - 1);  // all but the listener, which graceful_close() closed
}

namespace {

// What the concurrent test and its handlers share.
struct handoff {
  descriptor_pair closed;  // the first handler has closed its request.fd
  descriptor_pair go;      // the test lets it reply
  std::atomic<int> closed_number{-1};
  std::atomic<bool> number_reused{false};
};
handoff* current_handoff = nullptr;

// "close\n": closes request.fd, waits until the test has had a second client
// accepted (which, descriptors being numbered lowest first, gets that
// number), then replies through wfile and returns (the server closes).
// Anything else: says "started\n", waits for one more line, says "bye\n".
struct closing_handler : sockserv::stream_request_handler<> {
  void handle() {
    if (rfile.readline() != "close\n") {
      wfile.write("started\n");
      (void)rfile.readline();
      wfile.write("bye\n");
      return;
    }
    const int number = request.fd;
    (void)close_through_stdio(number);
    current_handoff->closed_number = number;
    current_handoff->closed.put();
    (void)wait_readable(current_handoff->go.read_end(), io_timeout_ms);
    current_handoff->number_reused = is_open_descriptor(number);
    wfile.write("reply\n");
  }
};

}  // namespace

TEST_CASE("threading: a handler that closes request.fd never touches the connection that got its number next",
          "[ownership]") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, closing_handler, sockserv::threading<2>>;
  auto server = listening<server_type>();
  handoff pipes;
  current_handoff = &pipes;
  const std::size_t before = open_descriptor_count();
  {
    serving_thread<server_type> serving(*server, 30.0);
    descriptor_holes_filled filled;  // from here on, the lowest free number is the one last closed
    sockserv::file_descriptor other = open_client_socket(AF_INET, SOCK_STREAM);  // numbered before the server's
    sockserv::file_descriptor closer = connect_to(server->server_address);
    send_all(closer.fd(), "close\n");
    REQUIRE(wait_readable(pipes.closed.read_end(), io_timeout_ms));
    REQUIRE(connect_retrying_eintr(other.fd(), server->server_address) == 0);
    send_all(other.fd(), "hello\n");
    REQUIRE(read_line(other.fd()) == "started\n");  // accepted after the close, and being served
    pipes.go.put();
    read_outcome first = read_until_eof(closer.fd());
    CHECK(first.data == "reply\n");  // through the server's own descriptor
    CHECK(first.eof);
    INFO("the first handler's number was " << pipes.closed_number.load());
    CHECK(pipes.number_reused);  // the second connection did get that number
    send_all(other.fd(), "more\n");
    read_outcome second = read_until_eof(other.fd());
    CHECK(second.data == "bye\n");  // neither the first reply nor an early close reached it
    CHECK(second.eof);
    CHECK(eventually([&] { return server->requests_in_flight() == 0; }, 5.0));
  }
  CHECK(open_descriptor_count() == before);
  current_handoff = nullptr;
}

namespace {

// An event handler that, at "close\n", closes request.fd through stdio and
// puts a /dev/null of its own at that number, then replies; every other
// line is echoed. The loop works on its own descriptor, so the connection
// goes on (its poller registration, its reads and writes) and the file at
// the freed number is never written to or closed by the loop.
struct event_number_reuser : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (line != "close\n") {
      (void)write(line);
      return;
    }
    const int number = request.fd;
    const bool closed = close_through_stdio(number) == 0;
    const int reused = occupy_number(number);
    left_at_number = reused;
    (void)write(closed && reused >= 0 ? "reply, number reused\n" : "reply, number not reused\n");
  }
};

// Echoes without ever reading request.fd.
struct event_echo_only : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) { (void)write(line); }
};

template <template <std::size_t> class Poller>
using event_reuser_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, event_number_reuser,
                                                   sockserv::event_loop<Poller, 16>>;

}  // namespace

TEMPLATE_TEST_CASE("event_loop: a handler that closes request.fd keeps its connection, and the loop never touches "
                   "the number",
                   "[ownership][event_loop]", event_reuser_server<sockserv::epoll_poller>,
                   event_reuser_server<sockserv::poll_poller>, event_reuser_server<sockserv::select_poller>) {
  using server_type = TestType;
  left_at_number = -1;
  const std::size_t before = open_descriptor_count();
  {
    auto server = listening<server_type>();
    serving_thread<server_type> serving(*server, 0.05);
    for (int round = 0; round < 3; ++round) {
      sockserv::file_descriptor client = connect_to(server->server_address);
      send_all(client.fd(), "close\n");
      CHECK(read_line(client.fd()) == "reply, number reused\n");
      send_all(client.fd(), "still here\n");  // heard through the loop's own, still watched, descriptor
      CHECK(read_line(client.fd()) == "still here\n");
      client.reset();
      CHECK(eventually([&] { return server->active_connections() == 0; }, 5.0));
      const int kept = left_at_number.exchange(-1);
      CHECK(is_character_device(kept));  // still the handler's /dev/null: the loop left it alone
      if (kept >= 0) ::close(kept);
    }
    serving.stop();
  }
  CHECK(open_descriptor_count() == before);  // the server (listener, poller) gone too
}

TEST_CASE("event_loop: a handler that never reads request.fd costs no descriptor for it", "[ownership][event_loop]") {
  using server_type =
      sockserv::basic_server<sockserv::inet4, sockserv::stream, event_echo_only, sockserv::event_loop<>>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server, 0.05);
  std::vector<sockserv::file_descriptor> open;
  open.push_back(connect_to(server->server_address));  // the loop has made whatever it makes once
  send_all(open.back().fd(), "hi\n");
  REQUIRE(read_line(open.back().fd()) == "hi\n");
  const std::size_t before = open_descriptor_count();
  constexpr std::size_t clients = 8;
  for (std::size_t i = 1; i < clients; ++i) {
    open.push_back(connect_to(server->server_address));
    send_all(open.back().fd(), "hi\n");
    REQUIRE(read_line(open.back().fd()) == "hi\n");  // accepted and served
  }
  CHECK(server->active_connections() == clients);
  CHECK(open_descriptor_count() == before + 2 * (clients - 1));  // each client's socket and the loop's, no copy
  open.clear();
  CHECK(eventually([&] { return server->active_connections() == 0; }, 5.0));
  serving.stop();
}

namespace {
// request.set_option() reaches the connection without making the copy;
// request.fd.get() is the copy's number, as the int conversion is.
struct option_setter : sockserv::event_request_handler<> {
  void handle_message(std::string_view) {
    const bool set = request.set_option(IPPROTO_TCP, TCP_NODELAY, 1) == 0;
    const std::size_t before = open_descriptor_count();  // no copy yet
    const int number = request.fd.get();
    const bool same = number == static_cast<int>(request.fd) && open_descriptor_count() == before + 1;
    int value = 0;
    socklen_t length = sizeof value;
    const bool seen = ::getsockopt(number, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0 && value != 0;
    (void)write(set && same && seen ? "ok\n" : "wrong\n");
  }
};
}  // namespace

TEST_CASE("request.set_option() sets an option without the copy; request.fd.get() is the copy", "[ownership]") {
  using server_type =
      sockserv::basic_server<sockserv::inet4, sockserv::stream, option_setter, sockserv::event_loop<>>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server, 0.05);
  sockserv::file_descriptor client = connect_to(server->server_address);
  send_all(client.fd(), "go\n");
  CHECK(read_line(client.fd()) == "ok\n");
}
