// Hostile and broken clients, faults and signals (issue #7): what a service
// facing a LAN all day must survive. Slowloris, endless lines, resets in the
// middle of a response, clients that vanish without a FIN, floods beyond the
// pool or the connection table, datagrams of every size, garbage addresses,
// and a storm of signals while requests flow. Each test would fail without
// the behaviour it names. Timeouts are short (0.2 s) so that the file runs
// in a few seconds; waits for a reply that should come are bounded by
// io_timeout_ms, so a broken server fails the test instead of hanging it.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/processes.hpp"
#include "support/serving_thread.hpp"
#include "support/signals.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <type_traits>
#include <vector>

using namespace test_support;
using Catch::Matchers::Contains;

namespace {

constexpr double short_timeout = 0.2;  // seconds: the per-connection timeout under test

// What the server side saw, written on serving and worker threads and read
// on the test thread (Catch2 assertions are not thread-safe).
struct observations {
  std::atomic<int> served{0};          // requests answered
  std::atomic<int> timed_out{0};       // requests ended by the connection's timeout
  std::atomic<int> write_failed{0};    // responses cut short by a failed write
  std::atomic<int> write_errno{0};     // errno of the last failed write
  std::atomic<int> second_write_errno{0};  // errno of a write after that
  std::atomic<long long> response_bytes{0};  // bytes a cut-short response got out
  std::atomic<int> handle_errors{0};
  std::atomic<int> handle_timeouts{0};
  std::atomic<int> signals{0};         // SIGUSR1 / SIGPIPE deliveries
  std::atomic<std::size_t> longest_piece{0};
  std::atomic<int> closed{0};          // connections the server has closed
};
observations* observing = nullptr;

// Fresh observations for one test.
struct observed {
  observations o;
  observed() { observing = &o; }
  ~observed() { observing = nullptr; }
};

extern "C" void count_signal(int) {
  if (observing != nullptr) observing->signals.fetch_add(1);
}

void record_max(std::atomic<std::size_t>& most, std::size_t value) {
  std::size_t now = most.load();
  while (value > now && !most.compare_exchange_weak(now, value)) {
  }
}

// Closes with a reset (RST) instead of a FIN: SO_LINGER {1, 0}.
void close_with_reset(sockserv::file_descriptor& client) {
  linger reset{1, 0};
  REQUIRE(::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
  client.reset();
}

// Makes a TCP client vanish the way a client whose cable was pulled does: its
// socket goes away and no FIN or RST ever reaches the server. TCP_REPAIR
// (CAP_NET_ADMIN) closes a socket silently. Without that privilege the
// client is kept open but silent, which from the server's side is the same:
// nothing arrives, ever. Returns whether the socket really vanished.
bool vanish(sockserv::file_descriptor& client) {
  int on = 1;
  if (::setsockopt(client.fd(), IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0) return false;
  client.reset();
  return true;
}

// A small receive buffer, set before connect so that the window stays small:
// a big response then stays mostly unsent while the client does not read.
sockserv::file_descriptor connect_with_small_window(const sockserv::socket_address& server) {
  sockserv::file_descriptor client = open_client_socket(server.family(), SOCK_STREAM);
  int small = 4096;
  REQUIRE(::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  REQUIRE(connect_retrying_eintr(client.fd(), server) == 0);
  return client;
}

// Sends SIGUSR1 to one thread again and again until stopped. The signal's
// handler is installed without SA_RESTART, so every blocking call the
// thread is in fails with EINTR (or returns short).
class signal_storm {
 public:
  explicit signal_storm(pthread_t target) : target_(target), thread_([this] { run(); }) {}
  signal_storm(const signal_storm&) = delete;
  signal_storm& operator=(const signal_storm&) = delete;
  ~signal_storm() { stop(); }
  void stop() {
    running_ = false;
    thread_.join();
  }
  long sent() const { return sent_.load(); }

 private:
  void run() {
    while (running_) {
      if (::pthread_kill(target_, SIGUSR1) == 0) ++sent_;
      std::this_thread::yield();
    }
  }
  pthread_t target_;
  std::atomic<bool> running_{true};
  std::atomic<long> sent_{0};
  joining_thread thread_;  // last: starts once the state above exists
};

// Returns once the storm has landed one more signal. Called while the
// serving thread has nothing to do, so that the signal finds it waiting in
// its poller (where a lost EINTR would end serve_forever).
void another_signal(const observations& o) {
  const int before = o.signals.load();
  REQUIRE(eventually([&] { return o.signals.load() > before; }));
}

// Position-dependent bytes: a lost, repeated or reordered byte shows.
const std::string& pattern() {
  static const std::string bytes = [] {
    std::string out(65536, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>((i * 131) ^ (i >> 8));
    return out;
  }();
  return bytes;
}

// ---- handlers ------------------------------------------------------------------

// Blocking: answers one line. A client that sends nothing, or no whole line,
// within the timeout is dropped unanswered.
struct one_line_echo : sockserv::stream_request_handler<256> {
  one_line_echo() { timeout = short_timeout; }
  void handle() {
    std::string_view line = rfile.readline();
    if (!line.empty() && line.back() == '\n') {
      ++observing->served;  // before the reply: once the client has it, the count is in
      wfile.write(line);
    } else if (rfile.timed_out()) {
      ++observing->timed_out;
    }
  }
};

// Event loop: answers one line and closes. The idle timeout drops a client
// that sends no whole line in time (finish() runs then, with nothing served).
struct event_one_line : sockserv::event_request_handler<sockserv::line_framing<>, 256, 512> {
  bool answered = false;
  void setup() { timeout = short_timeout; }
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
    answered = true;
    ++observing->served;
    close();
  }
  void handle_eof() { close(); }
  void finish() {
    if (!answered && !peer_finished()) ++observing->timed_out;
  }
};

template <class Handler, class Concurrency>
using tcp_with = sockserv::basic_server<sockserv::inet4, sockserv::stream, Handler, Concurrency>;

// Counts the connections it has closed, once they are closed: what a test
// waits on to know that the server's end of a connection is gone (a client
// sees EOF at the server's shutdown(SHUT_WR), a moment before its close()).
template <class Family, class Handler, class Concurrency>
struct close_counting
    : sockserv::basic_server<Family, sockserv::stream, Handler, Concurrency, close_counting<Family, Handler, Concurrency>> {
  using base =
      sockserv::basic_server<Family, sockserv::stream, Handler, Concurrency, close_counting<Family, Handler, Concurrency>>;
  using base::base;
  void close_request(sockserv::connection& request) {
    base::close_request(request);
    ++observing->closed;
  }
};

}  // namespace

// ==== 1. Slowloris: a client that starts a request and never finishes it =====

namespace {
constexpr std::string_view slowloris_start = "GET /cgi-bin/luci HTTP/1.1 Host: router X-Slow: ";  // no '\n', ever
}  // namespace

namespace {
// Holds every worker or slot with a request that never ends, then shows an
// honest client is still served once the timeout frees one, and that each
// slow client was dropped without a reply.
template <class Server>
void slowloris_then_honest_client(int capacity, observed& scope) {
  auto server = test_support::listening<Server>();
  serving_thread<Server> loop(*server);
  std::vector<sockserv::file_descriptor> slow;
  for (int i = 0; i < capacity; ++i) {
    slow.push_back(connect_to(server->server_address));
    send_all(slow.back().fd(), slowloris_start);
  }
  sockserv::file_descriptor honest = connect_to(server->server_address);  // waits in the backlog
  send_all(honest.fd(), "hello\n");
  CHECK(read_line(honest.fd()) == "hello\n");  // without the timeout: never (all held)
  for (auto& client : slow) {
    read_outcome dropped = read_until_eof(client.fd());
    CHECK(dropped.eof);
    CHECK(dropped.data.empty());
  }
  slow.clear();
  honest.reset();
  loop.stop();
  CHECK(scope.o.timed_out == capacity);
  CHECK(scope.o.served == 1);
}
}  // namespace

TEST_CASE("slowloris under threading: the handler's timeout frees the worker for the next client",
          "[hostile][slowloris][threading]") {
  observed scope;
  slowloris_then_honest_client<tcp_with<one_line_echo, sockserv::threading<2>>>(2, scope);
}

TEST_CASE("slowloris under event_loop: the idle timeout frees the slot for the next client",
          "[hostile][slowloris][event_loop]") {
  observed scope;
  slowloris_then_honest_client<tcp_with<event_one_line, sockserv::event_loop<sockserv::epoll_poller, 4>>>(4, scope);
}

// ==== 2. An endless line: no newline, ever =====================================

namespace {
// Reads pieces of at most 100 bytes through a 1 KiB buffer until the input
// ends or times out; replies "<bytes> <longest piece> <how it ended>".
struct endless_line_reader : sockserv::stream_request_handler<1024> {
  endless_line_reader() { timeout = short_timeout; }
  void handle() {
    std::size_t total = 0, longest = 0;
    for (std::string_view piece = rfile.readline(100); !piece.empty(); piece = rfile.readline(100)) {
      total += piece.size();
      if (piece.size() > longest) longest = piece.size();
    }
    const char* ended = rfile.timed_out() ? "timeout" : rfile.eof() ? "eof" : "error";
    wfile.write(std::to_string(total) + " " + std::to_string(longest) + " " + ended + "\n");
  }
};

// Event loop: reports each message it gets as "<size>+" (ends with '\n') or
// "<size>-" (a piece of a longer line).
struct event_piece_reporter : sockserv::event_request_handler<sockserv::line_framing<>, 256, 512> {
  void handle_message(std::string_view message) {
    record_max(observing->longest_piece, message.size());
    if (!write(std::to_string(message.size()) + (message.back() == '\n' ? "+\n" : "-\n"))) abort();
  }
};
}  // namespace

TEST_CASE("an endless line: readline(limit) returns bounded pieces, and the timeout ends the request",
          "[hostile][long_line]") {
  observed scope;
  using server_type = tcp_with<endless_line_reader, sockserv::threading<2>>;
  auto server = test_support::listening<server_type>();
  serving_thread<server_type> loop(*server);
  sockserv::file_descriptor client = connect_to(server->server_address);
  const std::size_t sent = 1u << 20;  // 1 MiB of 'x', no newline, and the client stays
  send_all(client.fd(), std::string(sent, 'x'));
  CHECK(read_line(client.fd()) == std::to_string(sent) + " 100 timeout\n");
  CHECK(read_until_eof(client.fd()).eof);
}

TEST_CASE("an endless line under event_loop comes in input-buffer-sized pieces, then the rest",
          "[hostile][long_line][event_loop]") {
  observed scope;
  using server_type = tcp_with<event_piece_reporter, sockserv::event_loop<sockserv::poll_poller, 4>>;
  auto server = test_support::listening<server_type>();
  serving_thread<server_type> loop(*server);
  sockserv::file_descriptor client = connect_to(server->server_address);
  // 100 000 bytes without a newline, then one: 390 pieces of 256 bytes and
  // the last 160 bytes with the newline.
  send_all(client.fd(), std::string(100000, 'x') + "\n");
  std::string expected;
  for (int i = 0; i < 390; ++i) expected += "256-\n";
  expected += "161+\n";
  CHECK(read_exactly(client.fd(), expected.size()) == expected);
  // A line that never ends is held to the same bound: more pieces, no growth.
  send_all(client.fd(), std::string(4096, 'y'));
  CHECK(read_exactly(client.fd(), 16 * 5) == [] {
    std::string pieces;
    for (int i = 0; i < 16; ++i) pieces += "256-\n";
    return pieces;
  }());
  client.reset();
  loop.stop();
  CHECK(scope.o.longest_piece == 256);
}

namespace {
// A buffer smaller than the length header (allowed by the types).
struct header_too_big : sockserv::event_request_handler<sockserv::length_prefix_framing<2>, 1, 64> {
  void handle_message(std::string_view message) {
    if (!write(message)) abort();
  }
};
struct header_too_big_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, header_too_big,
                             sockserv::event_loop<sockserv::epoll_poller, 4>, header_too_big_server> {
  using basic_server::basic_server;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) {
    if (std::strstr(what, "malformed") != nullptr) ++observing->handle_errors;
  }
};
}  // namespace

// Found by the framing fuzzer (fuzz/regressions/framing): the header could
// never be whole, so the loop waited for it for ever and the client was
// neither answered nor closed.
TEST_CASE("event_loop: input that can never frame (header larger than the buffer) is malformed, not awaited",
          "[hostile][long_line][event_loop]") {
  observed scope;
  header_too_big_server server({"127.0.0.1", 0});
  serving_thread<header_too_big_server> loop(server);
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), std::string("\x00\x01" "a", 3));
  read_outcome closed = read_until_eof(client.fd());
  CHECK(closed.eof);
  CHECK(closed.data.empty());
  client.reset();
  loop.stop();
  CHECK(scope.o.handle_errors == 1);
  CHECK(server.active_connections() == 0);
}

// ==== 3. A client that goes away in the middle of a response ==================
//
// A TCP client resets (SO_LINGER {1, 0}, then close). The server's next send
// fails with ECONNRESET, and every send after that with EPIPE, which raises
// SIGPIPE unless the send says MSG_NOSIGNAL. A unix stream client that
// closes makes the server's send fail with EPIPE at once. SIGPIPE is counted
// here instead of ending the binary. (Threading workers block every signal,
// so there a SIGPIPE would stay pending; the synchronous and event-loop
// servers send on a thread that takes it.)

namespace {
// Sends up to 64 MiB in 64 KiB writes until one fails, then tries once more
// (a handler that does not check, as a careless one would not).
struct big_responder : sockserv::stream_request_handler<256> {
  void handle() {
    if (rfile.readline() != "go\n") {
      wfile.write("?\n");
      return;
    }
    const std::string_view chunk(pattern().data(), 65536);
    for (int i = 0; i < 1024; ++i) {
      if (wfile.write(chunk) == -1) {
        observing->write_errno = wfile.error();
        if (request.sendall("!", 1) == -1) observing->second_write_errno = errno;
        ++observing->write_failed;
        return;
      }
      observing->response_bytes += static_cast<long long>(chunk.size());
    }
    ++observing->served;
  }
};

// Event loop: each "go" queues 16 KiB of response.
struct event_big_responder : sockserv::event_request_handler<sockserv::line_framing<>, 256, 65536> {
  void handle_message(std::string_view line) {
    if (line != "go\n") return;
    if (write(pattern().data(), 16384)) ++observing->served;
  }
};

template <class Family>
typename Family::endpoint endpoint_in(temp_dir& dir) {
  if constexpr (std::is_same_v<Family, sockserv::unix_socket>)
    return dir.file("hostile.sock");
  else
    return {"127.0.0.1", 0};
}

template <class Family, class Concurrency>
struct kind {
  using family = Family;
  using concurrency = Concurrency;
};

// The client asks for a big response, reads the start of it, then goes.
template <class Server>
void leave_mid_response(Server& server, int requests) {
  sockserv::file_descriptor client = connect_with_small_window(server.server_address);
  std::string asks;
  for (int i = 0; i < requests; ++i) asks += "go\n";
  send_all(client.fd(), asks);
  REQUIRE(read_exactly(client.fd(), 8192) == pattern().substr(0, 8192));  // the response flows
  if (server.server_address.family() == AF_UNIX)
    client.reset();
  else
    close_with_reset(client);
}
}  // namespace

TEMPLATE_TEST_CASE("a client that leaves mid-response: the write fails without SIGPIPE, the server goes on",
                   "[hostile][reset]", (kind<sockserv::inet4, sockserv::synchronous>),
                   (kind<sockserv::inet4, sockserv::threading<2>>),
                   (kind<sockserv::unix_socket, sockserv::synchronous>),
                   (kind<sockserv::unix_socket, sockserv::threading<2>>)) {
  observed scope;
  scoped_signal_handler on_sigpipe(SIGPIPE, count_signal, SA_RESTART);
  temp_dir dir;
  using server_type = sockserv::basic_server<typename TestType::family, sockserv::stream, big_responder,
                                             typename TestType::concurrency>;
  server_type server(endpoint_in<typename TestType::family>(dir));
  serving_thread<server_type> loop(server);

  leave_mid_response(server, 1);
  REQUIRE(eventually([&] { return scope.o.write_failed.load() == 1; }));
  CHECK((scope.o.write_errno == ECONNRESET || scope.o.write_errno == EPIPE));
  CHECK(scope.o.second_write_errno == EPIPE);
  CHECK(scope.o.response_bytes < 64ll << 20);  // cut short, not sent into the void

  // And the next client gets its response.
  sockserv::file_descriptor next = connect_to(server.server_address);
  send_all(next.fd(), "go\n");
  CHECK(read_exactly(next.fd(), 65536) == pattern().substr(0, 65536));
  next.reset();  // gone with the rest unread: the server's write fails again
  REQUIRE(eventually([&] { return scope.o.write_failed.load() == 2; }));
  CHECK_FALSE(loop.finished());
  loop.stop();
  CHECK(loop.outcome().ok());
  CHECK(scope.o.signals == 0);
}

TEMPLATE_TEST_CASE("event_loop: a client that leaves with output queued is dropped without SIGPIPE; others go on",
                   "[hostile][reset][event_loop]", sockserv::inet4, sockserv::unix_socket) {
  observed scope;
  scoped_signal_handler on_sigpipe(SIGPIPE, count_signal, SA_RESTART);
  temp_dir dir;
  using server_type = close_counting<TestType, event_big_responder, sockserv::event_loop<sockserv::epoll_poller, 8>>;
  server_type server(endpoint_in<TestType>(dir));
  serving_thread<server_type> loop(server);
  sockserv::file_descriptor bystander = connect_to(server.server_address);

  leave_mid_response(server, 200);  // 3.2 MiB asked for, 8 KiB read

  send_all(bystander.fd(), "go\n");
  CHECK(read_exactly(bystander.fd(), 16384) == pattern().substr(0, 16384));
  REQUIRE(eventually([&] { return scope.o.closed.load() == 1; }));  // the one that left is gone
  bystander.reset();
  CHECK_FALSE(loop.finished());
  loop.stop();
  CHECK(loop.outcome().ok());
  CHECK(scope.o.signals == 0);
}

// ==== 4. Half-open: the client vanished without a FIN ===========================

namespace {
// With one worker (or one slot), a vanished client holds the server until
// its timeout; the honest client after it is served only once that ran out.
template <class Server>
void vanished_client_is_reclaimed(observations& o) {
  auto server = test_support::listening<Server>();
  serving_thread<Server> loop(*server);
  // Counted once the loop has run a turn (the event loop opens its poller then).
  REQUIRE(exchange_stream(server->server_address, "warm-up\n") == "warm-up\n");
  REQUIRE(eventually([&] { return o.closed.load() == 1; }));
  const std::size_t descriptors = open_descriptor_count();

  sockserv::file_descriptor gone = connect_to(server->server_address);
  send_all(gone.fd(), "half a req");
  if (!vanish(gone)) WARN("no TCP_REPAIR here: the client stays open but silent");

  sockserv::file_descriptor honest = connect_to(server->server_address);
  send_all(honest.fd(), "next\n");
  CHECK(read_line(honest.fd()) == "next\n");
  CHECK(read_until_eof(honest.fd()).eof);
  REQUIRE(eventually([&] { return o.closed.load() == 3; }));
  CHECK(o.timed_out == 1);
  honest.reset();
  gone.reset();
  // Nothing of the vanished connection is left in the server.
  CHECK(open_descriptor_count() == descriptors);
  loop.stop();
  CHECK(o.served == 2);
}
}  // namespace

TEST_CASE("a client that vanished without a FIN is reclaimed by the timeout (threading)",
          "[hostile][half_open][threading]") {
  observed scope;
  vanished_client_is_reclaimed<close_counting<sockserv::inet4, one_line_echo, sockserv::threading<1>>>(scope.o);
}

TEST_CASE("a client that vanished without a FIN is reclaimed by the idle timeout (event_loop)",
          "[hostile][half_open][event_loop]") {
  observed scope;
  vanished_client_is_reclaimed<
      close_counting<sockserv::inet4, event_one_line, sockserv::event_loop<sockserv::epoll_poller, 1>>>(scope.o);
}

// ==== 5. A flood of connections beyond capacity =================================

namespace {
// 40 clients at once; every fifth sends nothing. The others must all be
// answered, the silent ones dropped by the timeout, and a client that comes
// after the flood is served as before.
template <class Server>
void flood(Server& server, observations& o) {
  constexpr int clients = 40;
  std::vector<sockserv::file_descriptor> sockets;
  for (int i = 0; i < clients; ++i) {
    sockets.push_back(connect_to(server.server_address));
    if (i % 5 != 4) send_all(sockets.back().fd(), "client " + std::to_string(i) + "\n");
  }
  int answered = 0, dropped = 0;
  deadline until(2 * io_timeout_ms);  // for all of them: a stuck server fails once, not 40 times
  for (int i = 0; i < clients; ++i) {
    read_outcome reply = read_until_eof(sockets[static_cast<std::size_t>(i)].fd(), until.remaining_ms());
    if (i % 5 != 4)
      answered += reply.eof && reply.data == "client " + std::to_string(i) + "\n";
    else
      dropped += reply.eof && reply.data.empty();
  }
  CHECK(answered == 32);
  CHECK(dropped == 8);
  CHECK(exchange_stream(server.server_address, "after\n") == "after\n");
  CHECK(eventually([&] { return o.timed_out.load() == 8 && o.served.load() == 33; }));
}
}  // namespace

TEST_CASE("a flood beyond the pool (threading<2>): everyone is served, the silent are dropped",
          "[hostile][flood][threading]") {
  observed scope;
  using server_type = tcp_with<one_line_echo, sockserv::threading<2>>;
  auto server = test_support::listening<server_type>();
  serving_thread<server_type> loop(*server);
  flood(*server, scope.o);
  loop.stop();
  CHECK(server->started_workers() == 2);
}

TEST_CASE("a flood beyond the table (event_loop, 4 slots): everyone is served, the silent are dropped",
          "[hostile][flood][event_loop]") {
  observed scope;
  using server_type = tcp_with<event_one_line, sockserv::event_loop<sockserv::epoll_poller, 4>>;
  auto server = test_support::listening<server_type>();
  serving_thread<server_type> loop(*server);
  flood(*server, scope.o);
  loop.stop();
  CHECK(server->active_connections() == 0);
}

// ==== 6. Datagrams of every size ===============================================

namespace {
template <std::size_t Reply>
struct datagram_echo : sockserv::datagram_request_handler<Reply> {
  void handle() { this->wfile.write(this->packet); }
};

// The sizes this suite sends: every size up to 2048, then a stride through
// the rest, and both sides of every power of two and of the UDP maximum.
// (make soak sends every size from 0 to 65507.)
std::vector<std::size_t> datagram_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t s = 0; s <= 2048; ++s) sizes.push_back(s);
  for (std::size_t s = 2049; s < 65507; s += 251) sizes.push_back(s);
  for (std::size_t power = 4096; power <= 32768; power *= 2)
    for (std::size_t s : {power - 1, power, power + 1}) sizes.push_back(s);
  for (std::size_t s : {65505u, 65506u, 65507u}) sizes.push_back(s);
  return sizes;
}

struct default_size_server
    : sockserv::basic_server<sockserv::inet4, sockserv::datagram<>, datagram_echo<8192>, sockserv::synchronous,
                             default_size_server> {
  using basic_server::basic_server;
  std::vector<std::size_t> oversized;  // what handle_error saw (the head that fit)
  void handle_error(sockserv::datagram_request& request, const sockserv::socket_address&, const char* what) {
    if (std::strstr(what, "max_packet_size") != nullptr) oversized.push_back(request.data.size());
  }
};
}  // namespace

TEST_CASE("a datagram<65507> server echoes datagrams of every size exactly", "[hostile][datagram]") {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::datagram<65507>, datagram_echo<65507>>;
  server_type server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  std::size_t exact = 0, sent = 0, first_wrong = 0;
  bool wrong = false;
  for (std::size_t size : datagram_sizes()) {
    send_datagram(client.fd(), server.server_address, std::string_view(pattern().data(), size));
    REQUIRE(server.handle_request().ok());
    std::optional<std::string> reply = receive_datagram(client.fd());
    ++sent;
    if (reply && *reply == std::string_view(pattern().data(), size))
      ++exact;
    else if (!wrong) {
      wrong = true;
      first_wrong = size;
    }
  }
  INFO("first size not echoed exactly: " << first_wrong);
  CHECK(exact == sent);
  CHECK(sent > 2300);
}

TEST_CASE("a default datagram<> server reports every oversized datagram to handle_error and keeps serving",
          "[hostile][datagram]") {
  default_size_server server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  std::size_t echoed = 0, fitting = 0, oversized = 0;
  for (std::size_t size : datagram_sizes()) {
    send_datagram(client.fd(), server.server_address, std::string_view(pattern().data(), size));
    REQUIRE(server.handle_request().ok());
    if (size <= 8192) {
      ++fitting;
      echoed += receive_datagram(client.fd()) == std::string(pattern().data(), size);
    } else {
      ++oversized;
    }
  }
  CHECK(echoed == fitting);
  REQUIRE(server.oversized.size() == oversized);
  for (std::size_t head : server.oversized) CHECK(head == 8192);  // the head that fit, never more
  CHECK_FALSE(wait_readable(client.fd(), 0));  // nothing answered for the oversized ones
  send_datagram(client.fd(), server.server_address, "still here");
  REQUIRE(server.handle_request().ok());
  CHECK(receive_datagram(client.fd()) == std::string("still here"));
}

// ==== 7. Garbage addresses =====================================================

namespace {
template <class Family>
sockserv::result parse(const typename Family::endpoint& where, sockserv::socket_address& out) {
  return Family::parse(where, out);
}

// A failure is a clear message that names the input (as far as it fits),
// never longer than the result holds.
void check_refused(const sockserv::result& r, const char* text) {
  INFO("input: " << text);
  CHECK_FALSE(r.ok());
  CHECK(r.code() == -1);
  CHECK(std::strlen(r.message()) < sockserv::result::message_capacity);
  CHECK_THAT(r.message(), Contains("invalid address"));
  CHECK_THAT(r.message(), Contains(std::string(text).substr(0, 40)));
}

std::size_t printed_length(const sockserv::address_string& s) {
  return strnlen(s.text, sizeof s.text);
}
}  // namespace

TEST_CASE("IPv4 text with odd bytes is refused clearly, format directives included", "[hostile][address]") {
  for (const char* bad : {"127.0.0.1\n", "127.0.0.1 ", "\t127.0.0.1", "127.0.0.1\x01", "127.0.0.\xff",
                          "\xef\xbc\x91" "27.0.0.1", "127.0.0.1:80", "0x7f.0.0.1", "127.1", "1.2.3.4.5",
                          "%s%s%s%n", "%", "localhost.", "LOCALHOST", "\x1b[31m127.0.0.1"}) {
    sockserv::socket_address out;
    check_refused(parse<sockserv::inet4>({bad, 1}, out), bad);
  }
}

TEST_CASE("IPv6 text with unbalanced brackets or a garbage scope is refused clearly", "[hostile][address]") {
  std::string long_scope = "fe80::1%" + std::string(100, 'e');
  std::string long_bracketed = "[" + std::string(200, ':') + "]";
  for (const char* bad :
       {"[", "]", "[[::1]]", "[::1]]", "[[::1]", "[::1]x", "x[::1]", "[::1", "::1]", "::1%", "fe80::1%",
        "[%]", "fe80::1%lo%lo", "fe80::1%\x01\xff", "fe80::1%lo\n", "fe80::1%%", "::1\n",
        "1:2:3:4:5:6:7:8:9", "::ffff:1.2.3.256", "%s%n%s", long_scope.c_str(), long_bracketed.c_str()}) {
    sockserv::socket_address out;
    check_refused(parse<sockserv::inet6>({bad, 1}, out), bad);
  }
  // A scope inside brackets is fine, and the longest address form fits.
  sockserv::socket_address scoped;
  REQUIRE(parse<sockserv::inet6>({"[fe80::1%lo]", 1}, scoped).ok());
  CHECK(scoped.as<sockaddr_in6>().sin6_scope_id != 0);
  sockserv::socket_address longest;
  REQUIRE(parse<sockserv::inet6>({"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%lo]", 65535}, longest).ok());
  CHECK(std::string(longest.to_string().c_str()) ==
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%" + std::to_string(::if_nametoindex("lo")) + "]:65535");
}

TEST_CASE("unix paths of 107, 108 and 200 bytes, odd bytes, and '@' alone", "[hostile][address][unix]") {
  const std::string path107 = "/" + std::string(106, 'p');  // + NUL: exactly sun_path
  const std::string path108 = path107 + "p";
  const std::string path200 = "/" + std::string(199, 'p');
  sockserv::socket_address out;
  REQUIRE(parse<sockserv::unix_socket>(path107.c_str(), out).ok());
  CHECK(out.size() == offsetof(sockaddr_un, sun_path) + 108);
  CHECK(out.to_string().c_str() == path107);
  CHECK(printed_length(out.to_string()) == 107);
  check_refused(parse<sockserv::unix_socket>(path108.c_str(), out), path108.c_str());
  check_refused(parse<sockserv::unix_socket>(path200.c_str(), out), path200.c_str());

  // An abstract name needs no NUL: '@' + 107 bytes fits, + 108 does not.
  const std::string abstract108 = "@" + std::string(107, 'a');
  REQUIRE(parse<sockserv::unix_socket>(abstract108.c_str(), out).ok());
  CHECK(out.size() == sizeof(sockaddr_un));
  CHECK(out.to_string().c_str() == abstract108);
  check_refused(parse<sockserv::unix_socket>((abstract108 + "a").c_str(), out), (abstract108 + "a").c_str());

  // '@' alone is the (valid, Linux) empty abstract name: one NUL byte.
  REQUIRE(parse<sockserv::unix_socket>("@", out).ok());
  CHECK(out.size() == offsetof(sockaddr_un, sun_path) + 1);
  CHECK(out.as<sockaddr_un>().sun_path[0] == '\0');
  CHECK_FALSE(out.is_unnamed());
  CHECK(std::string(out.to_string().c_str()) == "@");

  // Odd bytes are a name like any other; printing them stays in bounds.
  const char* odd = "/tmp/\x01\x7f\xff\n%s%n.sock";
  REQUIRE(parse<sockserv::unix_socket>(odd, out).ok());
  CHECK(std::string(out.to_string().c_str()) == odd);
}

TEST_CASE("server constructors given garbage refuse it clearly and keep no descriptor",
          "[hostile][address][construction]") {
  const std::size_t before = open_descriptor_count();
  const std::string path108 = "/" + std::string(107, 'p');
  const std::string path200 = "/" + std::string(199, 'p');
  int refused = 0;
  auto expect_refusal = [&](auto construct, const std::string& named) {
    try {
      construct();
    } catch (const sockserv::socket_error& failure) {
      ++refused;
      CHECK(std::strlen(failure.what()) < sockserv::result::message_capacity);
      CHECK_THAT(failure.what(), Contains(named.substr(0, 40)));
    }
  };
  using tcp = sockserv::tcp_server<one_line_echo>;
  using tcp6 = sockserv::tcp6_server<one_line_echo>;
  using unix_stream = sockserv::unix_stream_server<one_line_echo>;
  using unix_datagram = sockserv::unix_datagram_server<datagram_echo<64>>;
  expect_refusal([] { tcp({"127.0.0.1\n", 0}); }, "127.0.0.1");
  expect_refusal([] { tcp({"%s%s%s%n", 0}); }, "%s%s%s%n");
  expect_refusal([] { tcp6({"[::1", 0}); }, "[::1");
  expect_refusal([] { tcp6({"[", 0}); }, "[");
  expect_refusal([] { tcp6({"fe80::1%\x01\xff", 0}); }, "fe80::1%");
  expect_refusal([&] { unix_stream{sockserv::unix_endpoint(path108.c_str())}; }, path108);
  expect_refusal([&] { unix_datagram{sockserv::unix_endpoint(path200.c_str())}; }, path200);
  CHECK(refused == 7);
  CHECK(open_descriptor_count() == before);
}

// ==== EINTR: a storm of signals while requests flow ============================

namespace {
struct event_echo : sockserv::event_request_handler<sockserv::line_framing<>, 256, 512> {
  void setup() {  // many small replies: no Nagle delay (with delayed ACKs, 40 ms a round)
    int one = 1;
    ::setsockopt(request.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  void handle_message(std::string_view line) {
    if (!write(line)) abort();  // reply_reserve leaves room for a reply: a refusal is a bug
  }
};
template <template <std::size_t> class Poller>
using event_echo_server = tcp_with<event_echo, sockserv::event_loop<Poller, 64>>;
}  // namespace

TEMPLATE_TEST_CASE("event_loop under a storm of signals loses and repeats nothing", "[hostile][signal][event_loop]",
                   event_echo_server<sockserv::epoll_poller>, event_echo_server<sockserv::poll_poller>,
                   event_echo_server<sockserv::select_poller>) {
  observed scope;
  scoped_signal_handler on_usr1(SIGUSR1, count_signal, 0);  // no SA_RESTART
  auto server = test_support::listening<TestType>();
  serving_thread<TestType> loop(*server);
  signal_storm storm(loop.native_handle());

  constexpr int clients = 8, lines = 300;
  std::vector<sockserv::file_descriptor> sockets;
  std::vector<std::string> expected(clients);
  for (int c = 0; c < clients; ++c) {
    sockets.push_back(connect_to(server->server_address));
    for (int l = 0; l < lines; ++l)
      expected[static_cast<std::size_t>(c)] += std::to_string(c) + ":" + std::to_string(l) + ":" +
                                                std::string(static_cast<std::size_t>((l * 7) % 150),
                                                            static_cast<char>('a' + c)) +
                                                "\n";
  }
  // Each client's lines go out in odd-sized pieces, round-robin across
  // clients. After each round: every whole line sent so far is echoed (the
  // loop is idle now), and one more signal has landed on it.
  std::vector<std::string> received(clients);
  std::vector<std::size_t> at(clients, 0);
  int rounds = 0;
  for (bool more = true; more; ++rounds) {
    more = false;
    for (std::size_t c = 0; c < clients; ++c) {
      const std::string& all = expected[c];
      if (at[c] == all.size()) continue;
      std::size_t piece = std::min<std::size_t>(all.size() - at[c], 333 + c * 17);
      send_all(sockets[c].fd(), std::string_view(all).substr(at[c], piece));
      at[c] += piece;
      more = true;
    }
    for (std::size_t c = 0; c < clients; ++c) {
      const std::size_t whole_lines = expected[c].rfind('\n', at[c] - 1) + 1;
      received[c] += read_exactly(sockets[c].fd(), whole_lines - received[c].size());
      REQUIRE(received[c].size() == whole_lines);  // else the loop has stopped: fail now, not 8 times
    }
    another_signal(scope.o);
  }
  for (std::size_t c = 0; c < clients; ++c) CHECK(received[c] == expected[c]);
  CHECK(rounds > 50);
  storm.stop();
  CHECK(storm.sent() > 0);
  sockets.clear();
  CHECK_FALSE(loop.finished());  // a wait cut short did not end serve_forever
  loop.stop();
  CHECK(loop.outcome().ok());
}

namespace {
// Servers that count handle_timeout() calls.
template <class Concurrency>
using blocking_or_event_handler =
    std::conditional_t<std::is_same_v<Concurrency, sockserv::synchronous>, one_line_echo, event_one_line>;

template <class Concurrency>
struct stream_counting_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, blocking_or_event_handler<Concurrency>, Concurrency,
                             stream_counting_server<Concurrency>> {
  using base = sockserv::basic_server<sockserv::inet4, sockserv::stream, blocking_or_event_handler<Concurrency>,
                                      Concurrency, stream_counting_server<Concurrency>>;
  using base::base;
  void handle_timeout() { ++observing->handle_timeouts; }
};

template <class Concurrency>
struct datagram_counting_server
    : sockserv::basic_server<sockserv::inet4, sockserv::datagram<>, datagram_echo<8192>, Concurrency,
                             datagram_counting_server<Concurrency>> {
  using base = sockserv::basic_server<sockserv::inet4, sockserv::datagram<>, datagram_echo<8192>, Concurrency,
                                      datagram_counting_server<Concurrency>>;
  using base::base;
  void handle_timeout() { ++observing->handle_timeouts; }
};

// Runs handle_request() (timeout: 5 s) on a thread that a storm of signals
// hits until `arrive` has brought its request; returns once it returned.
template <class Server, class Arrive>
void handle_request_under_storm(Server& server, Arrive arrive) {
  server.timeout = io_timeout_ms / 1000.0;
  std::atomic<bool> returned{false};
  sockserv::result outcome;
  {
    joining_thread request([&] {
      outcome = server.handle_request();
      returned = true;
    });
    signal_storm storm(request.native_handle());
    // The thread waits for a request; every signal interrupts that wait.
    REQUIRE(eventually([&] { return observing->signals.load() >= 50 || returned.load(); }));
    CHECK_FALSE(returned.load());  // a signal is not a timeout, and not a request
    arrive();
    REQUIRE(eventually([&] { return returned.load(); }));
  }
  INFO(outcome.message());
  CHECK(outcome.ok());
  CHECK(observing->handle_timeouts == 0);
}
}  // namespace

TEMPLATE_TEST_CASE("handle_request under a storm of signals waits for its request; a signal is not a timeout",
                   "[hostile][signal]", sockserv::synchronous, (sockserv::event_loop<sockserv::epoll_poller, 4>),
                   (sockserv::event_loop<sockserv::poll_poller, 4>),
                   (sockserv::event_loop<sockserv::select_poller, 4>)) {
  observed scope;
  scoped_signal_handler on_usr1(SIGUSR1, count_signal, 0);
  SECTION("stream") {
    stream_counting_server<TestType> server({"127.0.0.1", 0});
    sockserv::file_descriptor client;
    handle_request_under_storm(server, [&] {
      client = connect_to(server.server_address);
      send_all(client.fd(), "through the storm\n");
    });
    // The event loop has taken the connection in; serving goes on from there.
    serving_thread<stream_counting_server<TestType>> loop(server);
    CHECK(read_line(client.fd()) == "through the storm\n");
  }
  SECTION("datagram") {
    datagram_counting_server<TestType> server({"127.0.0.1", 0});
    sockserv::file_descriptor client = open_datagram_client(AF_INET);
    handle_request_under_storm(server,
                               [&] { send_datagram(client.fd(), server.server_address, "through the storm"); });
    CHECK(receive_datagram(client.fd()) == std::string("through the storm"));
  }
}

TEMPLATE_TEST_CASE("datagram servers under a storm of signals answer every datagram exactly",
                   "[hostile][signal][datagram]", sockserv::synchronous, sockserv::threading<4>,
                   (sockserv::event_loop<sockserv::epoll_poller, 4>)) {
  observed scope;
  scoped_signal_handler on_usr1(SIGUSR1, count_signal, 0);
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::datagram<>, datagram_echo<8192>, TestType>;
  server_type server({"127.0.0.1", 0});
  serving_thread<server_type> loop(server);
  signal_storm storm(loop.native_handle());
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  int exact = 0;
  constexpr int datagrams = 1000;
  for (int i = 0; i < datagrams; ++i) {
    const std::size_t size = static_cast<std::size_t>(i * 37) % 8193;
    std::string_view packet(pattern().data() + i % 256, size);
    send_datagram(client.fd(), server.server_address, packet);
    exact += receive_datagram(client.fd()) == std::string(packet);
    another_signal(scope.o);  // lands while the server waits for the next one
  }
  CHECK(exact == datagrams);
  storm.stop();
  CHECK_FALSE(loop.finished());
  loop.stop();
  CHECK(loop.outcome().ok());
}
