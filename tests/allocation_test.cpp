// Zero heap (DESIGN.md): constructing a server, serving 200 requests and
// closing it allocates nothing, for each of the four synchronous server
// types.
//
// This file replaces the global allocator (support/counting_allocator.hpp:
// malloc, calloc, realloc, free, the aligned forms, and every operator
// new/delete forward to glibc and are counted while `counting` is on). That
// is why the Makefile links it into a binary of its own (allocation_tests).
//
// Inside a counting window there are no Catch2 assertions (Catch may
// allocate) and the clients use raw system calls; everything a window
// needs (the temporary directory, paths, buffers) is made before it opens.
// The single thread is the test's own: client and server take turns (the
// client connects and sends, the backlog or socket buffer holds it, then
// handle_request(), then the client reads the reply), so no thread is
// created inside a window either.
#include "support/chat_clients.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <memory>
#include <new>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/counting_allocator.hpp"

namespace {

constexpr int requests = 200;
constexpr int wait_ms = 5000;  // every client wait is bounded

struct line_echo : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
struct packet_echo : sockserv::datagram_request_handler<> {
  void handle() { wfile.write(packet); }
};

// What a window saw, checked after it closes.
struct session {
  bool constructed = false;
  int handled = 0;        // handle_request() returned ok
  int echoed = 0;         // the client got its message back, exactly
  int client_errors = 0;  // a client system call failed
};

bool readable(int fd) {
  pollfd ready{fd, POLLIN, 0};
  int rc;
  do rc = ::poll(&ready, 1, wait_ms);
  while (rc == -1 && errno == EINTR);
  return rc == 1;
}

// Reads until EOF (stream) into buffer; returns the length or -1.
long read_reply_stream(int fd, char* buffer, std::size_t capacity) {
  std::size_t used = 0;
  for (;;) {
    if (!readable(fd)) return -1;
    ssize_t n = ::recv(fd, buffer + used, capacity - used, 0);
    if (n == -1 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return static_cast<long>(used);
    used += static_cast<std::size_t>(n);
    if (used == capacity) return -1;
  }
}

// One stream request: connect, send, handle_request(), read to EOF.
template <class Server>
void one_stream_request(Server& server, session& s, const char* message, std::size_t length) {
  int fd = ::socket(server.server_address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 || ::connect(fd, server.server_address.data(), server.server_address.size()) != 0 ||
      ::send(fd, message, length, MSG_NOSIGNAL) != static_cast<ssize_t>(length)) {
    ++s.client_errors;
    if (fd != -1) ::close(fd);
    return;
  }
  if (server.handle_request().ok()) ++s.handled;
  char reply[256];
  long n = read_reply_stream(fd, reply, sizeof reply);
  if (n == static_cast<long>(length) && std::memcmp(reply, message, length) == 0) ++s.echoed;
  ::close(fd);
}

// One datagram request: send (from `client`), handle_request(), receive.
template <class Server>
void one_datagram_request(Server& server, session& s, int client, const char* message, std::size_t length) {
  if (::sendto(client, message, length, MSG_NOSIGNAL, server.server_address.data(), server.server_address.size()) !=
      static_cast<ssize_t>(length)) {
    ++s.client_errors;
    return;
  }
  if (server.handle_request().ok()) ++s.handled;
  char reply[256];
  if (!readable(client)) return;
  ssize_t n = ::recv(client, reply, sizeof reply, MSG_DONTWAIT);
  if (n == static_cast<ssize_t>(length) && std::memcmp(reply, message, length) == 0) ++s.echoed;
}

// A message that differs per request, formatted without allocating.
std::size_t format_message(char* out, std::size_t capacity, int i) {
  int n = std::snprintf(out, capacity, "request %d\n", i);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void check(const session& s, const window_counts& counts) {
  INFO("allocations: " << counts.allocations << ", releases: " << counts.releases);
  CHECK(s.constructed);
  CHECK(s.client_errors == 0);
  CHECK(s.handled == requests);
  CHECK(s.echoed == requests);
  CHECK(counts.allocations == 0);
  CHECK(counts.releases == 0);
}

// A private directory for the unix sockets, made and removed outside the
// counting windows.
struct socket_dir {
  char path[64] = "/tmp/sockserv-alloc-XXXXXX";
  char server_path[96] = {};
  char client_path[96] = {};
  socket_dir() {
    REQUIRE(::mkdtemp(path) != nullptr);
    std::snprintf(server_path, sizeof server_path, "%s/server.sock", path);
    std::snprintf(client_path, sizeof client_path, "%s/client.sock", path);
  }
  ~socket_dir() {
    ::unlink(server_path);
    ::unlink(client_path);
    ::rmdir(path);
  }
};

}  // namespace

TEST_CASE("the counting allocator counts (or this file proves nothing)", "[allocation]") {
  void* (*volatile allocate_bytes)(std::size_t) = &std::malloc;
  void (*volatile release_bytes)(void*) = &std::free;
  window_counts counts;
  {
    counting_window window;
    void* bytes = allocate_bytes(64);
    release_bytes(bytes);
    std::string* text = new std::string(100, 'x');  // the object and its buffer
    delete text;
    counts = window.stop();
  }
  CHECK(counts.allocations >= 2);
  CHECK(counts.releases >= 2);
}

namespace {
// Construct, serve 200 stream requests, close — all inside one window.
template <class Server>
void stream_server_window(const typename Server::endpoint& where) {
  session s;
  window_counts counts;
  char message[64];
  {
    counting_window window;
    {
      Server server(where);
      s.constructed = static_cast<bool>(server);
      server.timeout = wait_ms / 1000.0;
      for (int i = 0; i < requests && s.constructed; ++i)
        one_stream_request(server, s, message, format_message(message, sizeof message, i));
      server.server_close();
    }
    counts = window.stop();
  }
  check(s, counts);
}
}  // namespace

TEST_CASE("tcp_server: construct, serve 200 requests, close, without allocating", "[allocation]") {
  stream_server_window<sockserv::tcp_server<line_echo>>({"127.0.0.1", 0});
}

TEST_CASE("udp_server: construct, serve 200 requests, close, without allocating", "[allocation]") {
  session s;
  window_counts counts;
  char message[64];
  int client = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(client != -1);
  {
    counting_window window;
    {
      sockserv::udp_server<packet_echo> server({"127.0.0.1", 0});
      s.constructed = static_cast<bool>(server);
      server.timeout = wait_ms / 1000.0;
      for (int i = 0; i < requests && s.constructed; ++i)
        one_datagram_request(server, s, client, message, format_message(message, sizeof message, i));
      server.server_close();
    }
    counts = window.stop();
  }
  ::close(client);
  check(s, counts);
}

TEST_CASE("unix_stream_server: construct, serve 200 requests, close, without allocating", "[allocation]") {
  socket_dir dir;
  stream_server_window<sockserv::unix_stream_server<line_echo>>(dir.server_path);
}

TEST_CASE("unix_datagram_server: construct, serve 200 requests, close, without allocating", "[allocation]") {
  socket_dir dir;
  session s;
  window_counts counts;
  char message[64];
  sockaddr_un own{};
  own.sun_family = AF_UNIX;
  std::snprintf(own.sun_path, sizeof own.sun_path, "%s", dir.client_path);
  int client = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(client != -1);
  REQUIRE(::bind(client, reinterpret_cast<sockaddr*>(&own), sizeof own) == 0);  // to be answered
  {
    counting_window window;
    {
      sockserv::unix_datagram_server<packet_echo> server(dir.server_path);
      s.constructed = static_cast<bool>(server);
      server.timeout = wait_ms / 1000.0;
      for (int i = 0; i < requests && s.constructed; ++i)
        one_datagram_request(server, s, client, message, format_message(message, sizeof message, i));
      server.server_close();
    }
    counts = window.stop();
  }
  ::close(client);
  check(s, counts);
}

// ---- the concurrency policies in the steady state ---------------------------
// Here the server runs serve_forever() on a thread started before the
// window opens (starting a thread allocates: glibc's pthread_create callocs
// the new thread's TLS vector), and a few warm-up requests run first so the
// policy's own resources exist (the threading pool's worker; the event
// loop's poller). Inside the window: 200 requests, then nothing allocated.

namespace {

struct once_event : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
    close();
  }
};

template <class Server>
struct background_server {
  Server& server;
  pthread_t thread{};
  static void* run(void* self) {
    (void)static_cast<Server*>(self)->serve_forever(0.5);
    return nullptr;
  }
  explicit background_server(Server& s) : server(s) {
    REQUIRE(pthread_create(&thread, nullptr, &run, &server) == 0);
  }
  ~background_server() {
    server.shutdown();
    pthread_join(thread, nullptr);
  }
};

// One stream request against a server that serves on its own thread.
void one_served_request(const sockserv::socket_address& to, session& s, const char* message, std::size_t length) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 || ::connect(fd, to.data(), to.size()) != 0 ||
      ::send(fd, message, length, MSG_NOSIGNAL) != static_cast<ssize_t>(length)) {
    ++s.client_errors;
    if (fd != -1) ::close(fd);
    return;
  }
  ++s.handled;
  char reply[256];
  long n = read_reply_stream(fd, reply, sizeof reply);
  if (n == static_cast<long>(length) && std::memcmp(reply, message, length) == 0) ++s.echoed;
  ::close(fd);
}

template <class Server>
window_counts steady_state(Server& server, session& s, long* warm_up_allocations = nullptr) {
  background_server<Server> serving(server);
  char message[64];
  window_counts warm_up;
  {
    counting_window window;
    session ignored;
    for (int i = 0; i < 10; ++i) one_served_request(server.server_address, ignored, message, format_message(message, sizeof message, i));
    warm_up = window.stop();
  }
  if (warm_up_allocations != nullptr) *warm_up_allocations = warm_up.allocations;
  counting_window window;
  for (int i = 0; i < requests; ++i)
    one_served_request(server.server_address, s, message, format_message(message, sizeof message, i));
  return window.stop();
}

}  // namespace

TEST_CASE("threading: the steady state allocates nothing (thread start is outside it)", "[allocation][threading]") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, line_echo, sockserv::threading<1>>;
  server_type server({"127.0.0.1", 0});
  session s;
  s.constructed = static_cast<bool>(server);
  long at_thread_start = -1;
  window_counts counts = steady_state(server, s, &at_thread_start);
  check(s, counts);
  // What starting the one pool worker cost (glibc: the new thread's TLS
  // vector); a fixed, one-time amount, never per request.
  CHECK(at_thread_start >= 0);
#ifdef SOCKSERV_TEST_SANITIZER_ALLOCATOR
  CHECK(at_thread_start <= 16);  // the sanitizer's own thread start-up allocates too
#else
  CHECK(at_thread_start <= 4);
#endif
}

TEST_CASE("forking: the serving process allocates nothing per request", "[allocation][forking]") {
  sockserv::forking_tcp_server<line_echo> server({"127.0.0.1", 0});
  session s;
  s.constructed = static_cast<bool>(server);
  window_counts counts = steady_state(server, s);
  check(s, counts);
}

TEST_CASE("event_loop: the steady state allocates nothing, for every poller", "[allocation][event_loop]") {
  session s;
  window_counts counts;
  SECTION("epoll") {
    static sockserv::basic_server<sockserv::inet4, sockserv::stream, once_event, sockserv::event_loop<sockserv::epoll_poller, 8>> server({"127.0.0.1", 0});
    s.constructed = static_cast<bool>(server);
    counts = steady_state(server, s);
  }
  SECTION("poll") {
    static sockserv::basic_server<sockserv::inet4, sockserv::stream, once_event, sockserv::event_loop<sockserv::poll_poller, 8>> server({"127.0.0.1", 0});
    s.constructed = static_cast<bool>(server);
    counts = steady_state(server, s);
  }
  SECTION("select") {
    static sockserv::basic_server<sockserv::inet4, sockserv::stream, once_event, sockserv::event_loop<sockserv::select_poller, 8>> server({"127.0.0.1", 0});
    s.constructed = static_cast<bool>(server);
    counts = steady_state(server, s);
  }
  check(s, counts);
}

// ---- the chat pattern at scale (issue 10) ------------------------------------
// A chat server on a shared loop with 10 000 connected clients: every line
// one client sends goes to all the others (broadcast_if), and a periodic
// timer broadcasts a tick to everyone. After start-up (server, loop, the
// clients connected, a first batch delivered) nothing is allocated, on
// epoll and on poll (select cannot hold that many). The clients live in a
// child process (tests/support/chat_clients.hpp): 10 000 client and 10 000
// server sockets together would pass the usual descriptor limit.

namespace {

constexpr int chat_clients_wanted = 10000;
constexpr std::size_t chat_capacity = chat_clients_wanted + 16;

std::atomic<long> chat_refused{0};  // broadcasts that did not fit a listener's output

template <template <std::size_t> class Poller>
struct chat_member;
template <template <std::size_t> class Poller>
using chat_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, chat_member<Poller>,
                                           sockserv::event_loop<Poller, chat_capacity>>;

template <template <std::size_t> class Poller>
struct chat_member : sockserv::event_request_handler<sockserv::line_framing<>, 256, 1024> {
  void handle_message(std::string_view line) {
    auto& room = this->template server_as<chat_server<Poller>>();
    sockserv::broadcast_result r = room.broadcast_if(line, [this](const chat_member& to) { return &to != this; });
    chat_refused += static_cast<long>(r.refused + r.dropped + r.closed);
  }
};

// Reads one byte (and then a report) from the control socket, bounded.
bool read_control(int fd, char& tag, test_support::chat_client_report& report) {
  if (!readable(fd) || ::read(fd, &tag, 1) != 1) return false;
  if (tag == 'C') return true;
  std::size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(&report);
  while (got < sizeof report) {
    if (!readable(fd)) return false;
    ssize_t n = ::read(fd, bytes + got, sizeof report - got);
    if (n <= 0) return false;
    got += static_cast<std::size_t>(n);
  }
  return true;
}

// The client process: its control socket closed and the child reaped on
// every path (a failed REQUIRE too, then the child is killed).
struct client_process {
  pid_t pid = -1;
  int control = -1;
  int status = -1;
  int finish() {  // a finished child exits once its control socket closes
    if (control != -1) ::close(control);
    control = -1;
    if (pid > 0 && ::waitpid(pid, &status, 0) == pid) pid = -1;
    return status;
  }
  ~client_process() {
    if (pid > 0) ::kill(pid, SIGKILL);
    finish();
  }
};

// clients_wanted: how many chat clients the client process connects;
// batches: how many rounds it sends (each line of a round goes to every
// other client).
template <template <std::size_t> class Poller>
void chat_at_scale(int clients_wanted, int batches) {
  const long limit = test_support::raise_descriptor_limit(clients_wanted + 100);
  const int clients = static_cast<int>(std::min<long>(clients_wanted, limit - 100));
  if (clients < clients_wanted) WARN("descriptor limit " << limit << ": " << clients << " clients only");
  REQUIRE(clients >= 1000);
  chat_refused = 0;

  // Start-up: everything is made here, before the window.
  using server_type = chat_server<Poller>;
  auto loop = std::make_unique<sockserv::basic_loop<Poller, chat_capacity + 8>>();
  auto server = std::make_unique<server_type>(sockserv::inet_endpoint{"127.0.0.1", 0}, false);
  server->request_queue_size = 1024;
  REQUIRE(server->server_bind());
  REQUIRE(server->server_activate());
  REQUIRE(loop->add(*server));
  long ticks = 0;
  sockserv::broadcast_result ticked;
  sockserv::timer tick{*loop, [&] {
    ++ticks;
    sockserv::broadcast_result r = server->broadcast("tick\n");
    ticked.written += r.written;
    ticked.refused += r.refused + r.dropped + r.closed;
  }};
  int control[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) == 0);
  constexpr int lines_per_batch = 8;
  client_process child;
  child.pid = ::fork();
  REQUIRE(child.pid != -1);
  if (child.pid == 0) {
    // Nothing of the server is touched here: its poller is shared with
    // the parent (an epoll_ctl from the child would change the parent's).
    ::close(control[0]);
    ::_exit(test_support::run_chat_clients(server->server_address.data(), server->server_address.size(),
                                           control[1], clients, batches, lines_per_batch));
  }
  ::close(control[1]);
  child.control = control[0];
  const int to_child = control[0];

  // Serve until the child has connected every client and the server has
  // accepted them all.
  bool child_connected = false;
  char tag = 0;
  test_support::chat_client_report report;
  sockserv::io_watcher from_child;
  bool child_spoke = false;
  REQUIRE(from_child.start(*loop, to_child, true, false, [&](sockserv::readiness) { child_spoke = true; }));
  // Half as long again as the child's own deadline (30 s natively).
  const auto deadline = sockserv::detail::monotonic_ms() + test_support::chat_deadline_ms() * 3 / 2;
  while ((!child_connected || server->active_connections() < static_cast<std::size_t>(clients)) &&
         sockserv::detail::monotonic_ms() < deadline) {
    REQUIRE(loop->run_once(100));
    if (child_spoke && !child_connected) {
      REQUIRE(read_control(to_child, tag, report));
      REQUIRE(tag == 'C');
      child_connected = true;
      child_spoke = false;
    }
  }
  REQUIRE(server->active_connections() == static_cast<std::size_t>(clients));

  // The window: the child speaks (batch after batch, each to every other
  // client), the tick timer broadcasts every 2 ms, until the child reports.
  window_counts counts;
  bool reported = false;
  {
    counting_window window;
    tick.start_periodic(2);
    if (::write(to_child, "G", 1) == 1) {
      while (!reported && sockserv::detail::monotonic_ms() < deadline) {
        if (!loop->run_once(100)) break;
        if (child_spoke) reported = read_control(to_child, tag, report) && tag == 'D';
      }
      // Turns until the timer has broadcast at least twice inside the window.
      while (ticks < 2 && sockserv::detail::monotonic_ms() < deadline)
        if (!loop->run_once(100)) break;
    }
    tick.cancel();
    counts = window.stop();
  }
  from_child.stop();
  const int status = child.finish();

  INFO("allocations: " << counts.allocations << ", releases: " << counts.releases << "; clients " << clients
                       << ", lines sent " << report.lines_sent << ", received " << report.lines_received
                       << ", ticks received " << report.ticks_received << ", client errors " << report.errors);
  CHECK(reported);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(report.errors == 0);
  CHECK(report.lines_sent == batches * lines_per_batch);
  CHECK(report.lines_received == static_cast<long>(clients - 1) * report.lines_sent);
  CHECK(chat_refused == 0);
  CHECK(ticks >= 2);
  CHECK(ticked.written >= static_cast<std::size_t>(clients));
  CHECK(counts.allocations == 0);
  CHECK(counts.releases == 0);
}

}  // namespace

TEST_CASE("chat pattern: 10 000 clients and steady broadcasting allocate nothing after start-up, epoll",
          "[allocation][loop]") {
  chat_at_scale<sockserv::epoll_poller>(chat_clients_wanted, 12);
}

TEST_CASE("chat pattern: 2 000 clients and steady broadcasting allocate nothing after start-up, poll",
          "[allocation][loop]") {
  // The same table of 10 016 slots, fewer clients and rounds: each turn of
  // a poll() loop makes the kernel scan every descriptor (with 10 000
  // clients this case took 8 s of system time, a tenth of make test's CPU),
  // and a steady state that allocates nothing needs no more to show it;
  // the epoll case above takes the full load.
  chat_at_scale<sockserv::poll_poller>(2000, 4);
}
