// Daemon life: graceful stop with a deadline, socket activation (systemd,
// inetd), unix socket mode and stale files, SO_REUSEPORT acceptors, and
// pausing accept() while descriptors run out.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <set>
#include <thread>
#include <vector>

namespace {

// Echo every line until the client stops sending: a request stays in
// flight for as long as the client likes.
struct line_echo_until_eof : sockserv::stream_request_handler<> {
  void handle() {
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline()) wfile.write(line);
  }
};
struct event_echo_until_eof : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();  // reply_reserve leaves room for a reply: a refusal is a bug
  }
};

template <class Server>
std::unique_ptr<Server> local_server() {
  return std::make_unique<Server>(sockserv::inet_endpoint{"127.0.0.1", 0});
}

}  // namespace

TEMPLATE_TEST_CASE("graceful_close lets a request in flight finish before the deadline", "[daemon][graceful]",
                   (sockserv::basic_server<sockserv::inet4, sockserv::stream, line_echo_until_eof, sockserv::threading<4>>),
                   (sockserv::basic_server<sockserv::inet4, sockserv::stream, line_echo_until_eof, sockserv::forking<4>>),
                   (sockserv::basic_server<sockserv::inet4, sockserv::stream, event_echo_until_eof, sockserv::event_loop<>>)) {
  auto server = local_server<TestType>();
  test_support::serving_thread<TestType> loop(*server);
  sockserv::file_descriptor in_flight = test_support::connect_to(server->server_address);
  test_support::send_all(in_flight.fd(), "first\n");
  REQUIRE(test_support::read_line(in_flight.fd()) == "first\n");  // accepted, its request running
  loop.stop();  // serve_forever returns, as after SIGTERM

  std::atomic<bool> finished{false};
  std::thread stopper([&] { finished = server->graceful_close(5.0); });
  test_support::send_all(in_flight.fd(), "second\n");  // the request goes on during the stop
  CHECK(test_support::read_line(in_flight.fd()) == "second\n");
  REQUIRE(::shutdown(in_flight.fd(), SHUT_WR) == 0);  // and ends within the deadline
  test_support::read_outcome rest = test_support::read_until_eof(in_flight.fd());
  stopper.join();
  CHECK(rest.eof);
  CHECK(finished);
  CHECK(server->fileno() == -1);
  CHECK(test_support::connect_error(server->server_address) == ECONNREFUSED);  // no new clients
}

TEST_CASE("graceful_close gives up at the deadline: forked children are killed", "[daemon][graceful]") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, line_echo_until_eof, sockserv::forking<4>>;
  server_type server({"127.0.0.1", 0});
  sockserv::file_descriptor stuck;
  {
    test_support::serving_thread<server_type> loop(server);
    stuck = test_support::connect_to(server.server_address);
    test_support::send_all(stuck.fd(), "hello\n");
    REQUIRE(test_support::read_line(stuck.fd()) == "hello\n");  // its child runs, and never ends by itself
  }
  REQUIRE(server.active_children() == 1);
  CHECK_FALSE(server.graceful_close(0.2));
  CHECK(server.active_children() == 0);
  CHECK(test_support::read_until_eof(stuck.fd()).eof);  // the child is gone
}

namespace {
struct echo_line : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
}  // namespace

TEST_CASE("a server adopts a listening socket handed over (systemd, inetd wait mode)", "[daemon][activation]") {
  // What systemd does: bind and listen, then pass the descriptor on.
  sockserv::tcp_server<echo_line> maker({"127.0.0.1", 0});
  const int handed_over = ::dup(maker.fileno());
  REQUIRE(handed_over >= 0);
  maker.server_close();

  sockserv::tcp_server<echo_line> server(sockserv::adopt_socket, handed_over);
  REQUIRE(server);
  CHECK(server.fileno() == handed_over);
  CHECK(server.server_address.port() != 0);
  test_support::serving_thread<sockserv::tcp_server<echo_line>> loop(server);
  CHECK(test_support::exchange_stream(server.server_address, "activated\n") == "activated\n");
}

TEST_CASE("adopting a socket of the wrong kind fails clearly, and the refused descriptor is closed",
          "[daemon][activation]") {
  sockserv::udp_server<sockserv::datagram_request_handler<>> datagram({"127.0.0.1", 0});
  int unbound = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(unbound >= 0);
  struct attempt {
    int fd;
    const char* expected;
  };
  for (attempt a : {attempt{datagram.fileno(), "socket type"}, attempt{unbound, "not a listening socket"},
                    attempt{-1, "adopt descriptor -1"}}) {
    int fd = a.fd >= 0 ? ::dup(a.fd) : -1;
#if SOCKSERV_EXCEPTIONS
    try {
      sockserv::tcp_server<echo_line> server(sockserv::adopt_socket, fd);
      FAIL("adopted a socket it should have refused");
    } catch (const sockserv::socket_error& refused) {
      INFO(refused.what());
      CHECK(std::string(refused.what()).find(a.expected) != std::string::npos);
    }
#endif
    if (fd >= 0) CHECK_FALSE(test_support::is_open_descriptor(fd));  // a refused server does not keep it
  }
  ::close(unbound);
}

TEST_CASE("systemd_listen_fds reads LISTEN_FDS for this process only and clears it", "[daemon][activation]") {
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("LISTEN_FDS", "2", 1);
  CHECK(sockserv::systemd_listen_fds() == 2);
  CHECK(std::getenv("LISTEN_FDS") == nullptr);
  ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);  // meant for someone else
  ::setenv("LISTEN_FDS", "1", 1);
  CHECK(sockserv::systemd_listen_fds() == 0);
  CHECK(sockserv::systemd_listen_fds() == 0);  // nothing set at all
}

TEST_CASE("serve_connection serves one connection accepted elsewhere (inetd nowait)", "[daemon][activation]") {
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0);
  sockserv::unix_stream_server<echo_line> server(sockserv::no_socket);
  test_support::send_all(ends[1], "from inetd\n");
  REQUIRE(server.serve_connection(ends[0]));
  CHECK(test_support::read_until_eof(ends[1]).data == "from inetd\n");
  CHECK_FALSE(test_support::is_open_descriptor(ends[0]));  // the request was closed after it
  ::close(ends[1]);
}

TEST_CASE("unix socket files: the mode is set before anyone can connect; stale files are replaced",
          "[daemon][unix]") {
  test_support::temp_dir dir;
  const char* path = dir.file("mode.sock");
  SECTION("mode") {
    sockserv::unix_stream_server<echo_line> server(path, false);
    server.unix_socket_mode = 0660;
    REQUIRE(server.server_bind());
    REQUIRE(server.server_activate());
    struct stat info {};
    REQUIRE(::stat(path, &info) == 0);
    CHECK((info.st_mode & 0777) == 0660);
  }
  SECTION("a stale file (nobody listening) is removed when asked") {
    {
      sockserv::unix_stream_server<echo_line> crashed(path);
      REQUIRE(::link(path, dir.file("kept.sock")) == 0);  // survives the close's unlink, as after a crash
    }
    REQUIRE(::rename(dir.file("kept.sock"), path) == 0);
    sockserv::unix_stream_server<echo_line> refused(path, false);
    CHECK(refused.server_bind().code() == EADDRINUSE);  // by default: refused, as in Python
    sockserv::unix_stream_server<echo_line> server(path, false);
    server.remove_stale_unix_socket = true;
    REQUIRE(server.server_bind());
    REQUIRE(server.server_activate());
    test_support::serving_thread<sockserv::unix_stream_server<echo_line>> loop(server);
    CHECK(test_support::exchange_stream(server.server_address, "fresh\n") == "fresh\n");
  }
  SECTION("a live server's file is left alone") {
    sockserv::unix_stream_server<echo_line> live(path);
    sockserv::unix_stream_server<echo_line> second(path, false);
    second.remove_stale_unix_socket = true;
    CHECK(second.server_bind().code() == EADDRINUSE);
    test_support::serving_thread<sockserv::unix_stream_server<echo_line>> loop(live);
    CHECK(test_support::exchange_stream(live.server_address, "still mine\n") == "still mine\n");
  }
}

namespace {
struct pid_reply : sockserv::stream_request_handler<> {
  void handle() {
    rfile.readline();
    wfile.write(std::to_string(::getpid()) + "\n");
  }
};
}  // namespace

TEST_CASE("SO_REUSEPORT: several forked acceptors share one port", "[daemon][reuseport]") {
  using server_type = sockserv::tcp_server<pid_reply>;
  // Bound, never listening: holds the port for the test without taking
  // connections itself (a closing listener would reset those queued on it).
  server_type first({"127.0.0.1", 0}, false);
  first.allow_reuse_port = true;
  REQUIRE(first.server_bind());
  const std::uint16_t port = first.server_address.port();
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  std::vector<pid_t> acceptors;
  for (int i = 0; i < 3; ++i) {
    pid_t pid = ::fork();
    REQUIRE(pid != -1);
    if (pid == 0) {
      first.server_close();
      server_type own({"127.0.0.1", port}, false);
      own.allow_reuse_port = true;
      if (!own.server_bind() || !own.server_activate()) ::_exit(3);
      if (::write(ready[1], "r", 1) != 1) ::_exit(4);  // listening now
      for (;;) (void)own.handle_request();  // until killed
    }
    acceptors.push_back(pid);
  }
  for (int i = 0; i < 3; ++i) {
    char byte;
    REQUIRE(test_support::wait_readable(ready[0], 5000));
    REQUIRE(::read(ready[0], &byte, 1) == 1);
  }
  ::close(ready[0]);
  ::close(ready[1]);
  // Connections spread over the acceptors by the kernel's hash: keep
  // connecting until replies come from at least two processes.
  std::set<std::string> answered_by;
  sockserv::socket_address shared = test_support::parse_address<sockserv::inet4>({"127.0.0.1", port});
  for (int i = 0; i < 200 && answered_by.size() < 2; ++i)
    answered_by.insert(test_support::exchange_stream(shared, "who\n"));
  for (pid_t pid : acceptors) ::kill(pid, SIGKILL);  // no handler of the test runner's runs
  for (pid_t pid : acceptors) ::waitpid(pid, nullptr, 0);
  CHECK(answered_by.size() >= 2);
}

namespace {
std::atomic<int> fetch_attempts{0};
std::atomic<int> exhaustion_reports{0};
struct counting_server : sockserv::tcp_server<echo_line, counting_server> {
  using base = sockserv::tcp_server<echo_line, counting_server>;
  using base::base;
  sockserv::result get_request(sockserv::connection& request, sockserv::socket_address& client) {
    ++fetch_attempts;
    return base::get_request(request, client);
  }
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    if (std::string(what).find("Too many open files") != std::string::npos) ++exhaustion_reports;
  }
};
}  // namespace

TEST_CASE("out of descriptors, the server pauses accepting instead of spinning, then serves again",
          "[daemon][emfile]") {
  fetch_attempts = 0;
  exhaustion_reports = 0;
  counting_server server({"127.0.0.1", 0});
  test_support::serving_thread<counting_server> loop(server);
  REQUIRE(test_support::exchange_stream(server.server_address, "warm\n") == "warm\n");

  sockserv::file_descriptor waiting = test_support::open_client_socket(AF_INET, SOCK_STREAM);
  std::vector<int> fillers;
  for (int fd = ::dup(0); fd != -1; fd = ::dup(0)) fillers.push_back(fd);  // every descriptor taken
  REQUIRE(errno == EMFILE);
  const int attempts_before = fetch_attempts;
  // The kernel completes the connection; the server cannot accept it.
  REQUIRE(::connect(waiting.fd(), server.server_address.data(), server.server_address.size()) == 0);
  // Two seconds of exhaustion: at the back-off's pace (10 ms doubling to
  // 1 s) that is about ten attempts; a spinning loop makes thousands.
  test_support::send_all(waiting.fd(), "queued\n");
  CHECK_FALSE(test_support::wait_readable(waiting.fd(), 2000));
  const int attempts_during = fetch_attempts - attempts_before;
  for (int fd : fillers) ::close(fd);
  CHECK(test_support::read_line(waiting.fd(), 5000) == "queued\n");  // served once descriptors free
  CHECK(attempts_during >= 1);
  CHECK(attempts_during <= 20);
  CHECK(exhaustion_reports == 1);  // one report per episode
}
