// Child processes with an exit callback (include/sockserv/loop/child_watcher.hpp)
// on each poller's loop: the status is reported once; a program that cannot
// be started is reported clearly; a child that exited before it was watched
// is reported too; children the watcher does not own (the application's own,
// the forking policy's) keep their exit status for whoever waits for them.
#include "support/client.hpp"
#include "support/loops.hpp"

#include <sockserv.hpp>
#include <sockserv/loop.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

using Catch::Matchers::Contains;
using test_support::epoll_loop;
using test_support::poll_loop;
using test_support::run_until;
using test_support::select_loop;

namespace {
struct exit_report {
  int calls = 0;
  pid_t pid = -1;
  int status = 0;
  void operator()(pid_t p, int s) {
    ++calls;
    pid = p;
    status = s;
  }
};

// Blocks until `pid` has exited, leaving it a zombie (not reaped).
void wait_until_zombie(pid_t pid) {
  siginfo_t info{};
  int rc;
  do rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
  while (rc == -1 && errno == EINTR);
  REQUIRE(rc == 0);
  REQUIRE(info.si_pid == pid);
}

// True while `pid` is an unreaped child of ours that has exited.
bool still_reapable(pid_t pid) {
  siginfo_t info{};
  int rc;
  do rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | WNOHANG);
  while (rc == -1 && errno == EINTR);
  return rc == 0 && info.si_pid == pid;
}
}  // namespace

TEMPLATE_TEST_CASE("spawn: the exit status is reported once, on the loop", "[loop][child]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  exit_report report;
  sockserv::child_watcher child;
  const char* argv[] = {"/bin/sh", "-c", "exit 7", nullptr};
  sockserv::result spawned = child.spawn(loop, argv, [&report](pid_t p, int s) { report(p, s); });
  INFO(spawned.message());
  REQUIRE(spawned.ok());
  CHECK(child.active());
  const pid_t pid = child.pid();
  CHECK(pid > 0);
  REQUIRE(run_until(loop, [&] { return report.calls > 0; }));
  CHECK(report.pid == pid);
  REQUIRE(WIFEXITED(report.status));
  CHECK(WEXITSTATUS(report.status) == 7);
  CHECK_FALSE(child.active());
  // Once: more turns, more SIGCHLDs from elsewhere, no second report.
  REQUIRE(::raise(SIGCHLD) == 0);
  REQUIRE(loop.run_once(20));
  CHECK(report.calls == 1);
  // It was reaped: nothing is left to wait for.
  CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);
}

TEMPLATE_TEST_CASE("spawn: a signal's death, an environment, and several children at once", "[loop][child]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  exit_report reports[3];
  sockserv::child_watcher children[3];
  const char* killed[] = {"/bin/sh", "-c", "kill -TERM $$", nullptr};
  const char* env_check[] = {"/bin/sh", "-c", "test \"$SOCKSERV_CHILD\" = yes", nullptr};
  const char* env[] = {"SOCKSERV_CHILD=yes", "PATH=/usr/bin:/bin", nullptr};
  const char* by_path[] = {"sh", "-c", "exit 3", nullptr};  // found in PATH
  REQUIRE(children[0].spawn(loop, killed, [&reports](pid_t p, int s) { reports[0](p, s); }));
  REQUIRE(children[1].spawn(loop, env_check, [&reports](pid_t p, int s) { reports[1](p, s); }, env));
  REQUIRE(children[2].spawn(loop, by_path, [&reports](pid_t p, int s) { reports[2](p, s); }));
  REQUIRE(run_until(loop, [&] { return reports[0].calls && reports[1].calls && reports[2].calls; }));
  // The child starts with default dispositions, so SIGTERM kills it even
  // though this process may handle or ignore it.
  REQUIRE(WIFSIGNALED(reports[0].status));
  CHECK(WTERMSIG(reports[0].status) == SIGTERM);
  REQUIRE(WIFEXITED(reports[1].status));
  CHECK(WEXITSTATUS(reports[1].status) == 0);
  REQUIRE(WIFEXITED(reports[2].status));
  CHECK(WEXITSTATUS(reports[2].status) == 3);
  for (auto& r : reports) CHECK(r.calls == 1);
}

TEMPLATE_TEST_CASE("spawn of a program that does not exist is reported clearly", "[loop][child]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  exit_report report;
  sockserv::child_watcher child;
  const char* argv[] = {"/nonexistent/sockserv-no-such-program", nullptr};
  sockserv::result spawned = child.spawn(loop, argv, [&report](pid_t p, int s) { report(p, s); });
  if (spawned.ok()) {
    // Some posix_spawn implementations (qemu-user emulating glibc's
    // CLONE_VFORK as a fork) can only report the failed exec as exit 127.
    WARN("posix_spawn reported the failed exec as an exit status, not an error");
    REQUIRE(run_until(loop, [&] { return report.calls > 0; }));
    REQUIRE(WIFEXITED(report.status));
    CHECK(WEXITSTATUS(report.status) == 127);
  } else {
    CHECK(spawned.code() == ENOENT);
    CHECK_THAT(spawned.message(), Contains("sockserv-no-such-program"));
    CHECK_FALSE(child.active());
    REQUIRE(loop.run_once(10));
    CHECK(report.calls == 0);
  }
  const char* empty[] = {nullptr};
  sockserv::result refused = child.spawn(loop, empty, [&report](pid_t p, int s) { report(p, s); });
  CHECK_FALSE(refused.ok());
  CHECK(refused.code() == EINVAL);
  CHECK_FALSE(child.watch(loop, 0, [&report](pid_t p, int s) { report(p, s); }).ok());
}

TEMPLATE_TEST_CASE("a child that exited before its watcher was registered is reported", "[loop][child]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(42);
  wait_until_zombie(pid);  // its SIGCHLD came and went before anyone watched
  exit_report report;
  sockserv::child_watcher child;
  REQUIRE(child.watch(loop, pid, [&report](pid_t p, int s) { report(p, s); }));
  REQUIRE(run_until(loop, [&] { return report.calls > 0; }));
  CHECK(report.pid == pid);
  REQUIRE(WIFEXITED(report.status));
  CHECK(WEXITSTATUS(report.status) == 42);
  REQUIRE(loop.run_once(10));
  CHECK(report.calls == 1);
}

TEMPLATE_TEST_CASE("a child the application forked and does not watch keeps its status for its own waitpid",
                   "[loop][child]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  const pid_t unwatched = ::fork();
  REQUIRE(unwatched >= 0);
  if (unwatched == 0) ::_exit(5);
  wait_until_zombie(unwatched);  // exited first: its SIGCHLD may be what wakes the watcher

  exit_report report;
  sockserv::child_watcher child;
  const char* argv[] = {"/bin/sh", "-c", "exit 6", nullptr};
  REQUIRE(child.spawn(loop, argv, [&report](pid_t p, int s) { report(p, s); }));
  REQUIRE(run_until(loop, [&] { return report.calls > 0; }));
  CHECK(report.pid != unwatched);
  CHECK(WEXITSTATUS(report.status) == 6);

  REQUIRE(still_reapable(unwatched));
  int status = 0;
  REQUIRE(::waitpid(unwatched, &status, 0) == unwatched);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 5);
}

TEMPLATE_TEST_CASE("stopping a watcher leaves its child alone, to be reaped by somebody else", "[loop][child]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  exit_report report;
  sockserv::child_watcher child;
  const char* argv[] = {"/bin/sh", "-c", "exit 9", nullptr};
  REQUIRE(child.spawn(loop, argv, [&report](pid_t p, int s) { report(p, s); }));
  const pid_t pid = child.pid();
  child.stop();
  CHECK_FALSE(child.active());
  wait_until_zombie(pid);
  REQUIRE(loop.run_once(20));
  REQUIRE(loop.run_once(0));
  CHECK(report.calls == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WEXITSTATUS(status) == 9);
}

namespace {
// Answers with the pid of the process serving the request (a forked child).
struct pid_handler : sockserv::stream_request_handler<> {
  void handle() {
    rfile.readline();
    wfile.write(std::to_string(::getpid()) + "\n");
  }
};
}  // namespace

TEMPLATE_TEST_CASE("the forking policy's children are not reaped by a child watcher", "[loop][child][forking]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  sockserv::forking_tcp_server<pid_handler> server{sockserv::inet_endpoint{"127.0.0.1", 0}};
  // One request, served by a forked child that tells its pid and exits.
  sockserv::file_descriptor client = test_support::connect_to(server.server_address);
  test_support::send_all(client.fd(), "who\n");
  REQUIRE(server.handle_request());
  const std::string line = test_support::read_line(client.fd());
  REQUIRE_FALSE(line.empty());
  const pid_t forked = static_cast<pid_t>(std::stol(line));
  CHECK(server.active_children() == 1);
  wait_until_zombie(forked);

  // A watcher of another child runs meanwhile (its SIGCHLD, a first look).
  exit_report report;
  sockserv::child_watcher child;
  const char* argv[] = {"/bin/sh", "-c", "exit 1", nullptr};
  REQUIRE(child.spawn(loop, argv, [&report](pid_t p, int s) { report(p, s); }));
  REQUIRE(run_until(loop, [&] { return report.calls > 0; }));
  CHECK(report.pid != forked);

  CHECK(still_reapable(forked));  // the server's child is still the server's
  server.collect_children();
  CHECK(server.active_children() == 0);
  CHECK_FALSE(still_reapable(forked));
}

namespace {
// A supervisor: the exit callback starts the program again, three times.
struct supervisor {
  sockserv::loop& loop;
  sockserv::child_watcher child;
  int exits = 0;
  int respawn_failures = 0;
  pid_t last = -1;
  explicit supervisor(sockserv::loop& l) : loop(l) {}
  sockserv::result start() {
    static const char* argv[] = {"/bin/sh", "-c", "exit 4", nullptr};
    return child.spawn(loop, argv, [this](pid_t pid, int status) { exited(pid, status); });
  }
  void exited(pid_t pid, int status) {
    ++exits;
    if (pid == last || !WIFEXITED(status) || WEXITSTATUS(status) != 4) ++respawn_failures;
    last = pid;
    if (exits < 3 && !start()) ++respawn_failures;
  }
};
}  // namespace

TEMPLATE_TEST_CASE("an exit callback may spawn the program again (a supervisor)", "[loop][child]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  supervisor s{loop};
  REQUIRE(s.start());
  REQUIRE(run_until(loop, [&] { return s.exits == 3; }));
  CHECK(s.respawn_failures == 0);
  CHECK_FALSE(s.child.active());
  REQUIRE(loop.run_once(20));
  CHECK(s.exits == 3);
}

namespace {
// An exit callback that spawns again with a callback of another shape, then
// goes on using its own captures.
struct relay {
  int victim = 0;  // where the second callback's first capture points
  sockserv::loop* loop = nullptr;
  sockserv::child_watcher child;
  int first_done = 0;
  int second_calls = 0;
};
const char* const relay_argv[] = {"/bin/sh", "-c", "exit 0", nullptr};
}  // namespace

TEMPLATE_TEST_CASE("an exit callback that spawns with another callback keeps its own captures", "[loop][child]",
                   epoll_loop<>) {
  TestType loop;
  relay r;
  r.loop = &loop;
  relay* state = &r;
  int* done = &r.first_done;
  REQUIRE(r.child.spawn(loop, relay_argv, [state, done](pid_t, int) {
    int* calls = &state->second_calls;
    if (!state->child.spawn(*state->loop, relay_argv, [calls, state](pid_t, int) { ++*calls; (void)state; })) return;
    ++*done;  // read after on_exit_ was replaced
  }));
  REQUIRE(run_until(loop, [&] { return r.second_calls == 1; }));
  CHECK(r.first_done == 1);
  CHECK(r.victim == 0);
}
