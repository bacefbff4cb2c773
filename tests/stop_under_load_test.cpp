// Stopping threading, forking and event-loop servers while every worker,
// child or connection slot is taken by a client that never finishes:
// shutdown() is prompt, from a
// handler too; graceful_close() and the destructor keep their deadlines;
// restarts never lose a shutdown(); forked children drop the listener.
#include "support/client.hpp"
#include "support/idle_clients.hpp"
#include "support/processes.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <vector>

using namespace test_support;
using namespace std::chrono_literals;

namespace {

// Connections waiting in a TCP listener's accept queue (Linux reports it
// as tcpi_unacked for a listening socket).
unsigned accept_queue_length(int listener) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (::getsockopt(listener, IPPROTO_TCP, TCP_INFO, &info, &length) == -1) return ~0u;
  return info.tcpi_unacked;
}

// Connects a client and gives the server the time to accept it: at most
// 0.3 s, ended as soon as the accept queue is empty (under qemu-user, whose
// TCP_INFO reads 0, it ends at once: the tests then check stats()). A server without a
// free worker must leave it queued; one that takes it anyway (and then
// waits where no wake-up reaches it) is given the chance to.
sockserv::file_descriptor connect_and_let_accept(const sockserv::server_base& server) {
  sockserv::file_descriptor client = connect_to(server.server_address);
  eventually([&] { return accept_queue_length(server.fileno()) == 0; }, 0.3);
  return client;
}

using threading2 = sockserv::basic_server<sockserv::inet4, sockserv::stream, idle_handler, sockserv::threading<2>>;
using forking2 = sockserv::basic_server<sockserv::inet4, sockserv::stream, idle_handler, sockserv::forking<2>>;

// Generous against the 10 ms the issue asks for (bench/ measures the real
// figure): the suite also runs under qemu and sanitizers.
constexpr auto prompt = 1000ms;

}  // namespace

TEST_CASE("threading: request_shutdown() ends serve_forever at once with every worker held by an idle client") {
  auto server = listening<threading2>();
  serving_thread<threading2> serving(*server, 30.0);  // poll_interval must not be what ends the wait
  sockserv::file_descriptor first = occupy(server->server_address);
  sockserv::file_descriptor second = occupy(server->server_address);
  sockserv::file_descriptor waiting = connect_and_let_accept(*server);
  CHECK(server->stats().accepted == 2);  // no worker was free for the third: it waits in the backlog
  const auto start = std::chrono::steady_clock::now();
  server->request_shutdown();
  CHECK(serving.wait_finished(prompt));
  INFO("took " << seconds_since(start) << " s");
  CHECK(seconds_since(start) < 1.0);
  CHECK(server->requests_in_flight() == 2);
}

TEST_CASE("forking: request_shutdown() ends serve_forever at once with the child table full") {
  auto server = listening<forking2>();
  serving_thread<forking2> serving(*server, 30.0);
  sockserv::file_descriptor first = occupy(server->server_address);
  sockserv::file_descriptor second = occupy(server->server_address);
  sockserv::file_descriptor waiting = connect_and_let_accept(*server);
  CHECK(server->stats().accepted == 2);  // no child slot was free for the third
  server->request_shutdown();
  CHECK(serving.wait_finished(prompt));
  serving.join();
  CHECK_FALSE(server->graceful_close(0.0));  // the two children are killed and reaped
  CHECK(server->active_children() == 0);
  CHECK(zombie_children() == 0);
}

namespace {
// An event connection that greets (so occupy() knows it holds a slot) and
// then waits for input an idle client never sends.
struct idle_event_handler : sockserv::event_request_handler<> {
  void setup() { (void)write("ready\n"); }
  void handle_message(std::string_view line) { (void)write(line); }
};
using event2 = sockserv::basic_server<sockserv::inet4, sockserv::stream, idle_event_handler,
                                      sockserv::event_loop<sockserv::epoll_poller, 2>>;
}  // namespace

TEST_CASE("event_loop: request_shutdown() ends serve_forever at once with the connection table full") {
  auto server = listening<event2>();
  serving_thread<event2> serving(*server, 30.0);
  sockserv::file_descriptor first = occupy(server->server_address);
  sockserv::file_descriptor second = occupy(server->server_address);
  sockserv::file_descriptor waiting = connect_and_let_accept(*server);
  CHECK(server->stats().accepted == 2);  // no slot was free for the third
  const auto start = std::chrono::steady_clock::now();
  server->request_shutdown();
  CHECK(serving.wait_finished(prompt));
  INFO("took " << seconds_since(start) << " s");
  CHECK(seconds_since(start) < 1.0);
  CHECK(server->active_connections() == 2);  // stopped serving, not closed: server_close() does that
}

TEST_CASE("forking and event_loop: graceful_close(deadline) keeps its deadline with a request held by an idle client") {
  const auto keeps_its_deadline = [](auto& server, const char* policy) {
    using server_type = std::remove_reference_t<decltype(server)>;
    sockserv::file_descriptor idle;
    {
      serving_thread<server_type> serving(server, 30.0);
      idle = occupy(server.server_address);
    }
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(server.graceful_close(0.2));
    const double took = seconds_since(start);
    INFO(policy << ": graceful_close(0.2) took " << took << " s");
    CHECK(took >= 0.19);
    CHECK(took < 0.2 + 0.5);
    CHECK(read_until_eof(idle.fd(), 1000).eof);  // its request was ended: child killed, connection closed
  };
  {
    auto server = listening<forking2>();
    keeps_its_deadline(*server, "forking");
    CHECK(server->active_children() == 0);
    CHECK(zombie_children() == 0);
  }
  {
    auto server = listening<event2>();
    keeps_its_deadline(*server, "event_loop");
    CHECK(server->active_connections() == 0);
  }
}

namespace {
struct stopping_handler : sockserv::stream_request_handler<> {
  void handle() {
    std::string_view line = rfile.readline();
    if (line == "stop\n") server->shutdown();
    wfile.write(line == "stop\n" ? "stopped\n" : "served\n");
  }
};
}  // namespace

TEST_CASE("threading: shutdown() from a handler while the pool is full returns (no deadlock)") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, stopping_handler, sockserv::threading<1>>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server, 30.0);
  sockserv::file_descriptor stopper = connect_and_let_accept(*server);
  sockserv::file_descriptor waiting = connect_and_let_accept(*server);  // arrives while the one worker is busy
  send_all(stopper.fd(), "stop\n");
  CHECK(read_line(stopper.fd(), 3000) == "stopped\n");
  CHECK(serving.wait_finished(prompt));
}

TEST_CASE("threading: graceful_close(deadline) cancels a request blocked on an idle client") {
  auto server = listening<threading2>();
  serving_thread<threading2> serving(*server, 30.0);
  sockserv::file_descriptor idle = occupy(server->server_address);
  serving.stop();
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(server->graceful_close(0.2));
  const double took = seconds_since(start);
  INFO("graceful_close(0.2) took " << took << " s");
  CHECK(took >= 0.19);
  CHECK(took < 0.2 + 0.5);
  CHECK(read_until_eof(idle.fd(), 1000).eof);  // its connection was shut down
  CHECK(server->requests_in_flight() == 0);
}

TEST_CASE("threading: the destructor with daemon_threads cancels requests still blocked on a client") {
  auto server = listening<threading2>();
  server->daemon_threads = true;
  sockserv::file_descriptor idle;
  {
    serving_thread<threading2> serving(*server, 30.0);
    idle = occupy(server->server_address);
  }
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  INFO("destructor took " << seconds_since(start) << " s");
  CHECK(seconds_since(start) < 1.0);
  CHECK(read_until_eof(idle.fd(), 1000).eof);
}

namespace {
struct load_echo_line : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
}  // namespace

TEST_CASE("shutdown() from another thread stops each run of a serve_forever restarted in a loop (reload)") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, load_echo_line>;
  auto server = listening<server_type>();
  constexpr int restarts = 40;
  std::atomic<int> runs{0};
  joining_thread reloading([&] {
    for (int i = 0; i < restarts; ++i) {
      (void)server->serve_forever(30.0);
      ++runs;
    }
  });
  int stopped = 0;
  for (int i = 0; i < restarts; ++i) {
    // This run is serving once it answers.
    REQUIRE(exchange_stream(server->server_address, "hello\n") == "hello\n");
    std::atomic<bool> returned{false};
    joining_thread stopper([&] {
      server->shutdown();
      returned = true;
    });
    if (!eventually([&] { return returned.load(); }, 2.0)) {
      while (!returned) server->request_shutdown();  // unblock, then fail
      break;
    }
    ++stopped;
  }
  CHECK(stopped == restarts);
  while (runs < restarts) server->request_shutdown();  // a lost stop would leave the loop running
  reloading.join();
  CHECK(runs == restarts);
}

namespace {
// The parent's listener and wake-up pipe, by number and by identity: in the
// child a freed number may hold something else by now (the handler's own
// descriptor of its connection, say).
struct inherited_descriptor {
  int fd = -1;
  struct stat identity {};
  void note(int number) {
    fd = number;
    REQUIRE(::fstat(number, &identity) == 0);
  }
  bool still_open() const {
    struct stat now {};
    return ::fstat(fd, &now) == 0 && now.st_dev == identity.st_dev && now.st_ino == identity.st_ino;
  }
};
inherited_descriptor inherited_listener, inherited_wakeup;
struct descriptor_report_handler : sockserv::stream_request_handler<> {
  void handle() {
    const bool listener_open = inherited_listener.still_open();
    const bool wakeup_open = inherited_wakeup.still_open();
    wfile.write(listener_open ? "listener open\n" : "listener closed\n");
    wfile.write(wakeup_open ? "wakeup open\n" : "wakeup closed\n");
  }
};
}  // namespace

TEST_CASE("forking: a request child closes the listening socket and the wake-up pipe") {
  using server_type =
      sockserv::basic_server<sockserv::inet4, sockserv::stream, descriptor_report_handler, sockserv::forking<2>>;
  auto server = listening<server_type>();
  inherited_listener.note(server->fileno());
  inherited_wakeup.note(server->wakeup_fd());
  serving_thread<server_type> serving(*server, 30.0);
  sockserv::file_descriptor client = connect_to(server->server_address);
  read_outcome reply = read_until_eof(client.fd());
  CHECK(reply.data == "listener closed\nwakeup closed\n");
}

TEST_CASE("forking: at max_children the server waits for any of its children, not its oldest, despite zombies of the application's") {
  pid_t application_child = ::fork();
  REQUIRE(application_child != -1);
  if (application_child == 0) ::_exit(0);  // stays a zombie: the application reaps it when it likes
  auto server = listening<forking2>();
  serving_thread<forking2> serving(*server, 30.0);
  sockserv::file_descriptor oldest = occupy(server->server_address);  // never finishes
  {
    sockserv::file_descriptor quick = occupy(server->server_address);
    send_all(quick.fd(), "bye\n");
    CHECK(read_until_eof(quick.fd()).data == "bye\n");
  }
  // The quick child has exited; the table has room again.
  sockserv::file_descriptor third = occupy(server->server_address);
  send_all(third.fd(), "third\n");
  CHECK(read_until_eof(third.fd(), 3000).data == "third\n");
  serving.stop();
  CHECK_FALSE(server->graceful_close(0.0));
  int status = 0;
  CHECK(::waitpid(application_child, &status, 0) == application_child);  // still ours to reap
}

namespace {
// A Derived whose close_request hook uses a member; it records whether that
// hook ever ran after its destructor had begun.
template <class Handler, class Policy>
struct member_using_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, Handler, Policy, member_using_server<Handler, Policy>> {
  using member_using_server::basic_server::basic_server;
  static inline std::atomic<int> hooks_after_destruction{0};
  std::atomic<bool> alive{true};
  ~member_using_server() {
    this->end_all_requests();
    alive = false;
  }
  void close_request(sockserv::connection& request) {
    if (!alive) ++hooks_after_destruction;
    member_using_server::basic_server::close_request(request);
  }
};

// The README's ~Derived pattern with one idle client in flight: no hook runs
// after the destructor has begun, and the client sees its connection end.
template <class Server, bool EventLoop>
void check_members_outlive_requests() {
  auto server = listening<Server>();
  if constexpr (!EventLoop) server->daemon_threads = true;  // requests nothing else waits for
  Server::hooks_after_destruction = 0;
  sockserv::file_descriptor idle;
  {
    serving_thread<Server> serving(*server, 30.0);
    idle = occupy(server->server_address);
  }
  if constexpr (EventLoop) CHECK(server->active_connections() == 1);  // still open when the destructor begins
  server.reset();
  CHECK(Server::hooks_after_destruction == 0);
  CHECK(read_until_eof(idle.fd(), 1000).eof);
}
}  // namespace

TEST_CASE("threading: end_all_requests() in ~Derived ends daemon requests before Derived's members go") {
  check_members_outlive_requests<member_using_server<idle_handler, sockserv::threading<2>>, false>();
}

TEST_CASE("event_loop: end_all_requests() in ~Derived closes the connections before Derived's members go") {
  // (Its connections are closed through the server's hooks too.)
  check_members_outlive_requests<member_using_server<idle_event_handler, sockserv::event_loop<sockserv::epoll_poller, 2>>,
                                 true>();
}
