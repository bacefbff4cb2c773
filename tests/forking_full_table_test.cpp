// forking with its child table full: the serving loop sleeps in one wait
// that a child's exit (SIGCHLD through the wake-up pipe) or shutdown() ends
// — it does not wake to look — and stats().peak_in_flight counts children
// alive, not exited ones not reaped yet.
#include "support/client.hpp"
#include "support/idle_clients.hpp"
#include "support/processes.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <sys/resource.h>

using namespace test_support;

namespace {

using forking2 = sockserv::basic_server<sockserv::inet4, sockserv::stream, idle_handler, sockserv::forking<2>>;

long voluntary_context_switches() {
  rusage usage{};
  REQUIRE(::getrusage(RUSAGE_SELF, &usage) == 0);
  return usage.ru_nvcsw;
}

// The application's own SIGCHLD handler: it must still run.
// (Lock-free atomic: set on the serving thread, read on the test's.)
std::atomic<int> application_saw_sigchld{0};
void application_sigchld(int) { application_saw_sigchld = 1; }

}  // namespace

TEST_CASE("forking: with the child table full the serving loop sleeps until a child exits", "[forking]") {
  struct sigaction application {}, before {};
  application.sa_handler = &application_sigchld;
  sigemptyset(&application.sa_mask);
  application.sa_flags = SA_RESTART;
  REQUIRE(::sigaction(SIGCHLD, &application, &before) == 0);
  application_saw_sigchld = 0;
  {
    auto server = listening<forking2>();
    serving_thread<forking2> serving(*server, 30.0);  // poll_interval must not be what wakes it
    sockserv::file_descriptor first = occupy(server->server_address);
    sockserv::file_descriptor second = occupy(server->server_address);
    sockserv::file_descriptor waiting = connect_to(server->server_address);
    // Half a second with the table full and nothing happening: a loop that
    // looked again every 10 ms would switch out about 50 times.
    const long switches_before = voluntary_context_switches();
    CHECK_FALSE(wait_readable(waiting.fd(), 500));  // not served: there is no slot
    const long switches = voluntary_context_switches() - switches_before;
    INFO(switches << " voluntary context switches in 0.5 s");
    CHECK(switches < 20);
    // A child's exit is what frees the slot and wakes the loop.
    const auto start = std::chrono::steady_clock::now();
    send_all(first.fd(), "bye\n");
    CHECK(read_line(first.fd()) == "bye\n");
    CHECK(read_line(waiting.fd(), 3000) == "ready\n");
    INFO("served " << seconds_since(start) << " s after a slot was freed");
    CHECK(seconds_since(start) < 1.0);
    CHECK(application_saw_sigchld == 1);  // chained to, not replaced
    serving.stop();
    CHECK_FALSE(server->graceful_close(0.0));  // the two idle children are killed and reaped
  }
  struct sigaction now {};
  REQUIRE(::sigaction(SIGCHLD, &before, &now) == 0);
  CHECK(now.sa_handler == &application_sigchld);  // given back once no server waits
}

TEST_CASE("forking: graceful_close() returns as soon as the last child exits", "[forking]") {
  auto server = listening<forking2>();
  serving_thread<forking2> serving(*server, 30.0);
  sockserv::file_descriptor only = occupy(server->server_address);
  serving.stop();
  bool closed_in_time = false;
  std::chrono::steady_clock::time_point bye, returned;
  {
    joining_thread closing([&] {
      closed_in_time = server->graceful_close(10.0);
      returned = std::chrono::steady_clock::now();
    });
    bye = std::chrono::steady_clock::now();
    send_all(only.fd(), "bye\n");
    CHECK(read_line(only.fd()) == "bye\n");
  }
  CHECK(closed_in_time);
  const double took = std::chrono::duration<double>(returned - bye).count();
  INFO("graceful_close returned " << took << " s after the child was told to finish");
  CHECK(took < 1.0);  // woken by the exit, not by the 10 s deadline
  CHECK(zombie_children() == 0);
}

TEST_CASE("forking: peak_in_flight does not count a child that has exited but is not reaped yet", "[forking]") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, idle_handler, sockserv::forking<4>>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server, 30.0);  // nothing reaps between requests but the next fork
  for (int round = 0; round < 4; ++round) {
    sockserv::file_descriptor client = occupy(server->server_address);
    send_all(client.fd(), "bye\n");
    CHECK(read_line(client.fd()) == "bye\n");
    CHECK(read_until_eof(client.fd()).eof);
    CHECK(eventually([] { return children_all_waitable(); }, 5.0));  // it has exited (a zombie, or reaped)
  }
  CHECK(server->stats().accepted == 4);
  CHECK(server->stats().peak_in_flight == 1);  // one request at a time, however late the reaping
  serving.stop();
  CHECK(server->graceful_close(5.0));
}

TEST_CASE("forking: collect_children() waiting on a full table returns when shutdown() is requested", "[forking]") {
  auto server = listening<forking2>();  // not serving: the application collects by itself
  serving_thread<forking2> serving(*server, 30.0);
  sockserv::file_descriptor first = occupy(server->server_address);
  sockserv::file_descriptor second = occupy(server->server_address);
  serving.stop();
  int returned[2];
  REQUIRE(::pipe(returned) == 0);
  sockserv::file_descriptor returned_read(returned[0]), returned_write(returned[1]);
  {
    joining_thread collecting([&] {
      server->collect_children();  // both children are alive: it waits
      (void)!::write(returned_write.fd(), "r", 1);
    });
    CHECK_FALSE(wait_readable(returned_read.fd(), 200));  // still waiting for room
    const auto start = std::chrono::steady_clock::now();
    server->request_shutdown();
    const bool ended = wait_readable(returned_read.fd(), 3000);
    INFO("collect_children() returned " << seconds_since(start) << " s after request_shutdown()");
    CHECK(ended);
    if (!ended) send_all(first.fd(), "bye\n");  // let the thread go, so the test ends
  }
  CHECK_FALSE(server->graceful_close(0.0));
}

TEST_CASE("forking: a SIGCHLD handler the application installs while the server waits stays installed", "[forking]") {
  struct sigaction original {};
  REQUIRE(::sigaction(SIGCHLD, nullptr, &original) == 0);
  {
    auto server = listening<forking2>();
    // The application takes SIGCHLD from the server here, so the server
    // notices the freed slot at its poll_interval, not at the exit.
    serving_thread<forking2> serving(*server, 0.2);
    sockserv::file_descriptor first = occupy(server->server_address);
    sockserv::file_descriptor second = occupy(server->server_address);
    sockserv::file_descriptor waiting = connect_to(server->server_address);
    CHECK_FALSE(wait_readable(waiting.fd(), 100));  // the table is full: the server waits on SIGCHLD
    struct sigaction application {};
    application.sa_handler = &application_sigchld;
    sigemptyset(&application.sa_mask);
    application.sa_flags = SA_RESTART;
    REQUIRE(::sigaction(SIGCHLD, &application, nullptr) == 0);  // installed while sockserv's is in place
    send_all(first.fd(), "bye\n");
    CHECK(read_line(first.fd()) == "bye\n");
    CHECK(read_line(waiting.fd(), 3000) == "ready\n");  // a slot freed: the server stopped waiting
    serving.stop();
    CHECK_FALSE(server->graceful_close(0.0));
  }
  struct sigaction now {};
  REQUIRE(::sigaction(SIGCHLD, &original, &now) == 0);
  CHECK(now.sa_handler == &application_sigchld);  // not undone by the server's restore
}
