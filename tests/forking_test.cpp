// forking policy: failures reported from the child, max_children, the
// application's own children left alone, block_on_close, and no zombies or
// descriptors left across a thousand requests.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/processes.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fcntl.h>
#include <poll.h>
#include <memory>
#include <stdexcept>
#include <sys/wait.h>
#include <vector>

namespace {

// A pipe the children write one-byte events to, read by the test (the
// parent) afterwards: how a child's handle_error is observed.
struct event_pipe {
  int ends[2] = {-1, -1};
  event_pipe() { REQUIRE(::pipe(ends) == 0); }
  ~event_pipe() {
    ::close(ends[0]);
    ::close(ends[1]);
  }
  // Everything written so far (the writers have exited by now).
  std::string drain() const {
    ::fcntl(ends[0], F_SETFL, O_NONBLOCK);
    std::string out;
    char buffer[256];
    ssize_t n;
    while ((n = ::read(ends[0], buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
  // Blocks (bounded) until `count` bytes arrived.
  std::string read_exactly(std::size_t count) const {
    std::string out;
    while (out.size() < count) {
      pollfd ready{ends[0], POLLIN, 0};
      if (::poll(&ready, 1, 10000) != 1) break;
      char byte;
      if (::read(ends[0], &byte, 1) != 1) break;
      out += byte;
    }
    return out;
  }
  void write(char event) const { REQUIRE(::write(ends[1], &event, 1) == 1); }
};
event_pipe* events = nullptr;

using failing_handler = test_support::line_failing_handler;

struct reporting_forked_server : sockserv::forking_tcp_server<failing_handler, reporting_forked_server> {
  using base = sockserv::forking_tcp_server<failing_handler, reporting_forked_server>;
  using base::base;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    events->write(std::string(what) == "handler failed" ? 'E' : '?');
  }
};

}  // namespace

TEST_CASE("forking: a std::exception in the child reaches handle_error once; other exceptions do not",
          "[forking][errors]") {
  event_pipe pipe;
  events = &pipe;
  reporting_forked_server server({"127.0.0.1", 0});
  {
    test_support::serving_thread<reporting_forked_server> loop(server);
    for (const char* line : {"std\n", "other\n", "fine\n"})
      CHECK(test_support::exchange_stream(server.server_address, line) == (std::string(line) == "fine\n" ? "served\n" : ""));
  }
  server.server_close();  // waits for every child
  CHECK(pipe.drain() == "E");
  CHECK(server.active_children() == 0);
  CHECK(test_support::zombie_children() == 0);
  events = nullptr;
}

namespace {
// Reports 'b' when it begins and 'e' when it ends; in between it waits for
// its client's line.
struct parked_handler : sockserv::stream_request_handler<> {
  void handle() {
    events->write('b');
    wfile.write(rfile.readline());
    events->write('e');
  }
};
using parked_server = sockserv::forking_tcp_server<parked_handler>;
}  // namespace

TEST_CASE("forking: at max_children the server waits for a child to exit before forking again",
          "[forking][limits]") {
  event_pipe pipe;
  events = &pipe;
  parked_server server({"127.0.0.1", 0});
  server.max_children = 2;
  test_support::serving_thread<parked_server> loop(server);
  std::vector<sockserv::file_descriptor> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(test_support::connect_to(server.server_address));
  std::string seen = pipe.read_exactly(2);  // two children running
  REQUIRE(seen == "bb");
  for (auto& c : clients) {
    test_support::send_all(c.fd(), "go\n");
    CHECK(test_support::read_until_eof(c.fd()).data == "go\n");
  }
  loop.stop();
  server.server_close();
  seen += pipe.drain();
  REQUIRE(seen.size() == 8);
  int running = 0, most = 0;
  for (char event : seen) {
    running += event == 'b' ? 1 : -1;
    most = std::max(most, running);
  }
  CHECK(most == 2);
  CHECK(server.active_children() == 0);
  events = nullptr;
}

TEST_CASE("forking: a child the application forked itself keeps its exit status", "[forking][children]") {
  int release[2];
  REQUIRE(::pipe(release) == 0);
  pid_t own = ::fork();
  REQUIRE(own != -1);
  if (own == 0) {
    ::close(release[1]);
    char byte;
    while (::read(release[0], &byte, 1) == -1 && errno == EINTR) {
    }
    ::_exit(72);
  }
  ::close(release[0]);

  event_pipe pipe;
  events = &pipe;
  parked_server server({"127.0.0.1", 0});
  server.max_children = 1;  // every request after the first waits for a child
  {
    test_support::serving_thread<parked_server> loop(server);
    ::close(release[1]);  // our own child exits now...
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(own), &info, WEXITED | WNOWAIT) == 0);  // ...and is a zombie
    for (int i = 0; i < 3; ++i) CHECK(test_support::exchange_stream(server.server_address, "go\n") == "go\n");
  }
  server.server_close();
  CHECK(server.active_children() == 0);
  int status = 0;
  REQUIRE(::waitpid(own, &status, 0) == own);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 72);
  events = nullptr;
}

TEST_CASE("forking: block_on_close = false leaves the children running at server_close", "[forking][close]") {
  event_pipe pipe;
  events = &pipe;
  parked_server server({"127.0.0.1", 0});
  server.block_on_close = false;
  test_support::serving_thread<parked_server> loop(server);
  sockserv::file_descriptor c = test_support::connect_to(server.server_address);
  REQUIRE(pipe.read_exactly(1) == "b");
  loop.stop();
  server.server_close();  // returns with the child still parked
  CHECK(server.active_children() == 1);
  test_support::send_all(c.fd(), "late\n");
  CHECK(test_support::read_until_eof(c.fd()).data == "late\n");  // the child still serves its client
  server.collect_children(true);
  CHECK(server.active_children() == 0);
  CHECK(test_support::zombie_children() == 0);
  events = nullptr;
}

namespace {
struct echo_line_handler : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
}  // namespace

TEST_CASE("forking: a thousand requests leave no children, zombies or descriptors", "[forking][leaks]") {
  using server_type = sockserv::forking_tcp_server<echo_line_handler>;
  const std::size_t descriptors_before = test_support::open_descriptor_count();
  {
    server_type server({"127.0.0.1", 0});
    test_support::serving_thread<server_type> loop(server);
    for (int i = 0; i < 1000; ++i) REQUIRE(test_support::exchange_stream(server.server_address, "ping\n") == "ping\n");
    loop.stop();
    CHECK(server.active_children() <= server.max_children);
    server.server_close();
    CHECK(server.active_children() == 0);
  }
  CHECK(test_support::zombie_children() == 0);
  CHECK(test_support::open_descriptor_count() == descriptors_before);
}

namespace {
// Calls shutdown() from the request's child, then answers.
struct child_stopping_handler : sockserv::stream_request_handler<> {
  void handle() {
    (void)rfile.readline();
    server->shutdown();  // the child's copy of the server (README: signal the parent instead)
    wfile.write("stopped?\n");
  }
};
}  // namespace

TEST_CASE("forking: shutdown() in a handler stops only the request's child; the parent goes on serving",
          "[forking][shutdown]") {
  using server_type = sockserv::forking_tcp_server<child_stopping_handler>;
  server_type server({"127.0.0.1", 0});
  test_support::serving_thread<server_type> loop(server, 30.0);
  for (int round = 0; round < 3; ++round)
    CHECK(test_support::exchange_stream(server.server_address, "stop\n") == "stopped?\n");
  CHECK_FALSE(loop.finished());
  CHECK(loop.stop() < 5.0);
}
