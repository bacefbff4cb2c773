// Several servers on one loop and one thread (loop.add): stream and
// datagram, inet and unix, under every poller; how they stop; Python's
// fileno() + handle_request() way of serving several servers still works.
#include "support/client.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

std::atomic<int> served_off_loop_thread{0};
std::atomic<pthread_t> loop_thread{};

void note_thread() {
  if (!pthread_equal(loop_thread.load(), pthread_self())) ++served_off_loop_thread;
}

// Echoes lines; "one\n"-style exchanges (exchange_stream) want the server to
// close after the reply, so a line ending in '.' ends the connection.
struct shared_echo_event : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    note_thread();
    if (!write(line)) abort();
    if (line.size() >= 2 && line[line.size() - 2] == '.') close();
  }
};

struct echo_datagram : sockserv::datagram_request_handler<> {
  void handle() {
    note_thread();
    wfile.write(packet);
  }
};

template <template <std::size_t> class Poller>
struct servers {
  using tcp = sockserv::basic_server<sockserv::inet4, sockserv::stream, shared_echo_event, sockserv::event_loop<Poller, 16>>;
  using unix_stream =
      sockserv::basic_server<sockserv::unix_socket, sockserv::stream, shared_echo_event, sockserv::event_loop<Poller, 16>>;
  using udp = sockserv::basic_server<sockserv::inet4, sockserv::datagram<>, echo_datagram, sockserv::event_loop<Poller, 16>>;
  using loop = sockserv::basic_loop<Poller, 64>;
};

// Runs loop.serve_forever() on a thread of its own; stop() shuts it down.
template <class Loop>
class loop_thread_runner {
 public:
  explicit loop_thread_runner(Loop& l) : loop_(l), thread_([this] { run(); }) {}
  ~loop_thread_runner() { stop(); }
  void stop() {
    loop_.shutdown();
    thread_.join();
  }
  sockserv::result outcome() const { return outcome_; }

 private:
  void run() {
    loop_thread = pthread_self();
    outcome_ = loop_.serve_forever();
  }
  Loop& loop_;
  sockserv::result outcome_;
  test_support::joining_thread thread_;
};

}  // namespace

TEMPLATE_TEST_CASE("shared loop: one thread serves a TCP, a unix stream and a UDP server together",
                   "[shared_loop]", servers<sockserv::epoll_poller>, servers<sockserv::poll_poller>,
                   servers<sockserv::select_poller>) {
  served_off_loop_thread = 0;
  test_support::temp_dir dir;
  typename TestType::loop loop;
  typename TestType::tcp tcp({"127.0.0.1", 0});
  const std::string control = dir.path() + "/control";
  typename TestType::unix_stream local(sockserv::unix_endpoint{control.c_str()});
  typename TestType::udp udp({"127.0.0.1", 0});
  REQUIRE(loop.add(tcp));
  REQUIRE(loop.add(local));
  REQUIRE(loop.add(udp));
  // The timer shares the thread too: each tick writes a byte to a pipe.
  int tick_pipe[2];
  REQUIRE(::pipe(tick_pipe) == 0);
  sockserv::file_descriptor tick_read(tick_pipe[0]), tick_write(tick_pipe[1]);
  sockserv::timer tick{loop, [&] { (void)!::write(tick_write.fd(), "t", 1); }};
  tick.start_periodic(5);
  {
    loop_thread_runner<typename TestType::loop> runner(loop);
    for (int round = 0; round < 3; ++round) {
      CHECK(test_support::exchange_stream(tcp.server_address, "tcp.\n") == "tcp.\n");
      CHECK(test_support::exchange_stream(local.server_address, "unix.\n") == "unix.\n");
      CHECK(test_support::exchange_datagram(udp.server_address, "udp") == "udp");
    }
    // Connections of different servers open at once, interleaved.
    sockserv::file_descriptor a = test_support::connect_to(tcp.server_address);
    sockserv::file_descriptor b = test_support::connect_to(local.server_address);
    test_support::send_all(a.fd(), "one\n");
    test_support::send_all(b.fd(), "two\n");
    CHECK(test_support::read_line(b.fd()) == "two\n");
    CHECK(test_support::read_line(a.fd()) == "one\n");
    char ticks[3];
    for (char& t : ticks) {
      REQUIRE(test_support::wait_readable(tick_read.fd(), 2000));
      REQUIRE(::read(tick_read.fd(), &t, 1) == 1);
    }
    CHECK(std::string(ticks, 3) == "ttt");
    runner.stop();
    CHECK(runner.outcome().ok());
  }
  CHECK(served_off_loop_thread == 0);
}

TEST_CASE("shared loop: a joined server's shutdown() stops the loop, and its own serve_forever() refuses",
          "[shared_loop]") {
  using types = servers<sockserv::default_poller>;
  types::loop loop;
  types::tcp tcp({"127.0.0.1", 0});
  REQUIRE(loop.add(tcp));
  sockserv::result own = tcp.serve_forever();
  CHECK(!own);
  CHECK(std::string(own.message()).find("shared loop") != std::string::npos);
  std::atomic<bool> returned{false};
  test_support::joining_thread serving([&] {
    sockserv::result r = loop.serve_forever();
    CHECK(r.ok());
    returned = true;
  });
  CHECK(test_support::exchange_stream(tcp.server_address, "up.\n") == "up.\n");
  tcp.shutdown();  // stops the loop serving it, and waits for it
  serving.join();
  CHECK(returned);
  // Removed from the loop, the server serves on its own again.
  loop.remove(tcp);
  test_support::serving_thread<types::tcp> alone(tcp);
  CHECK(test_support::exchange_stream(tcp.server_address, "alone.\n") == "alone.\n");
}

TEST_CASE("shared loop: a stop requested before serve_forever() makes it return at once; shutdown() from a "
          "callback does not deadlock",
          "[shared_loop]") {
  sockserv::basic_loop<> loop;
  loop.request_shutdown();
  REQUIRE(loop.serve_forever());  // returns at once: the stop was pending
  int fired = 0;
  sockserv::timer stopper{loop, [&] {
                            ++fired;
                            loop.shutdown();  // on the loop's own thread: only requests
                          }};
  stopper.start(1);
  REQUIRE(loop.serve_forever());
  CHECK(fired == 1);
}

TEST_CASE("shared loop: a server joined while it has connections elsewhere is refused", "[shared_loop]") {
  using types = servers<sockserv::default_poller>;
  types::tcp tcp({"127.0.0.1", 0});
  sockserv::file_descriptor c = test_support::connect_to(tcp.server_address);
  test_support::send_all(c.fd(), "x\n");
  REQUIRE(tcp.handle_request());  // accepted on its own loop
  REQUIRE(tcp.active_connections() == 1);
  types::loop loop;
  sockserv::result joined = loop.add(tcp);
  CHECK(!joined);
  CHECK(std::string(joined.message()).find("already has connections") != std::string::npos);
}

namespace {
struct line_echo : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
}  // namespace

TEST_CASE("shared loop: Python's way still works — poll on several servers' fileno(), then handle_request()",
          "[shared_loop]") {
  sockserv::tcp_server<line_echo> first({"127.0.0.1", 0});
  sockserv::tcp_server<line_echo> second({"127.0.0.1", 0});
  std::atomic<bool> stop{false};
  test_support::joining_thread driver([&] {
    while (!stop) {
      pollfd both[2] = {{first.fileno(), POLLIN, 0}, {second.fileno(), POLLIN, 0}};
      if (::poll(both, 2, 20) <= 0) continue;
      if (both[0].revents & POLLIN) (void)first.handle_request();
      if (both[1].revents & POLLIN) (void)second.handle_request();
    }
  });
  CHECK(test_support::exchange_stream(first.server_address, "1\n") == "1\n");
  CHECK(test_support::exchange_stream(second.server_address, "2\n") == "2\n");
  CHECK(test_support::exchange_stream(first.server_address, "3\n") == "3\n");
  stop = true;
}

TEST_CASE("shared loop: a lone server's own loop stops the server (a watcher on server.loop() may stop it)",
          "[shared_loop]") {
  using types = servers<sockserv::default_poller>;
  types::tcp tcp({"127.0.0.1", 0});
  sockserv::timer stopper{tcp.loop(), [&] { tcp.loop().request_shutdown(); }};
  stopper.start(20);
  sockserv::result served = tcp.serve_forever(0.05);  // returns once the timer asked the loop to stop
  CHECK(served.ok());
  CHECK(!stopper.armed());
}
