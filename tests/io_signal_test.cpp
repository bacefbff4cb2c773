// rfile and wfile (io.hpp) under signals: a handler's blocking send or
// receive interrupted by a signal (no SA_RESTART: the call fails with EINTR
// or returns short) must neither lose nor repeat a byte.
#include "support/client.hpp"
#include "support/serving_thread.hpp"
#include "support/signals.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

using namespace test_support;

namespace {

constexpr std::size_t write_size = 4u << 20;  // 4 MiB
constexpr std::size_t read_size = 1u << 20;   // 1 MiB

std::atomic<int> interrupts{0};
extern "C" void count_interrupt(int) { interrupts.fetch_add(1); }

// Position-dependent bytes: a lost, repeated or reordered chunk shows.
char byte_at(std::size_t i) { return static_cast<char>((i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24)) & 0xff); }

const std::string& payload(std::size_t size) {
  static std::string data;
  if (data.size() < size) {
    data.resize(write_size);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = byte_at(i);
  }
  return data;
}

// Set on the client before connecting and on the server's end right after
// accepting: the server's send then blocks again and again.
void shrink_buffers(int fd) {
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

// Whether the kernel thread `tid` of this process is asleep (state 'S').
bool thread_sleeping(long tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
  std::FILE* file = std::fopen(path, "r");
  if (file == nullptr) return false;
  char text[512] = {};
  std::size_t n = std::fread(text, 1, sizeof text - 1, file);
  std::fclose(file);
  const char* end_of_name = std::strrchr(text, ')');  // "tid (name) S ..."
  return n > 0 && end_of_name != nullptr && end_of_name[1] == ' ' && end_of_name[2] == 'S';
}

// The kernel id of the thread running the current handler, and whether
// its handle() still runs.
std::atomic<long> handler_thread{0};
std::atomic<bool> handler_busy{false};

// Waits (at most 200 ms) until the handler's thread sleeps in a blocking
// call, then signals it there. Where /proc cannot tell, signals regardless.
template <class RequestThread>
void interrupt_when_blocked(RequestThread& serving) {
  deadline until(200);
  while (!(handler_thread != 0 && thread_sleeping(handler_thread)) && until.remaining_ms() > 0) {
    if (handler_thread != 0 && !handler_busy) return;  // done: nothing left to interrupt
    std::this_thread::yield();
  }
  serving.interrupt();
}

// One wfile.write() of 4 MiB; records what it returned.
struct bulk_writer : sockserv::stream_request_handler<> {
  static inline std::atomic<long long> written{0};
  void setup() {
    stream_request_handler::setup();
    shrink_buffers(request.fd);  // the send blocks, and signals interrupt it
    handler_busy = true;
    handler_thread = static_cast<long>(::syscall(SYS_gettid));
  }
  void handle() {
    written = wfile.write(payload(write_size).data(), write_size);
    handler_busy = false;
  }
};

// One rfile.read() of 1 MiB; replies "<bytes read> <intact?>". (Default
// buffers: the client sends in small pieces, so the receive keeps waiting
// for the next one, and that wait is what the signals interrupt.)
struct bulk_reader : sockserv::stream_request_handler<> {
  void setup() {
    stream_request_handler::setup();
    handler_busy = true;
    handler_thread = static_cast<long>(::syscall(SYS_gettid));
  }
  void handle() {
    static char buffer[read_size];
    std::size_t n = rfile.read(buffer, read_size);
    handler_busy = false;
    bool intact = std::string_view(buffer, n) == std::string_view(payload(read_size).data(), n);
    wfile.write(std::to_string(n) + (intact ? " intact" : " corrupt"));
  }
};

// Runs handle_request() once on a thread that signals can target.
template <class Server>
struct request_thread {
  joining_thread thread;
  explicit request_thread(Server& server) : thread([&server] { (void)server.handle_request(); }) {}
  void interrupt() { ::pthread_kill(thread.native_handle(), SIGUSR1); }  // ESRCH once done: fine
};

}  // namespace

TEST_CASE("wfile.write sends everything, in order, while signals interrupt the send", "[io][wfile][signal]") {
  (void)payload(write_size);  // built before the clock of any wait starts
  scoped_signal_handler handler(SIGUSR1, count_interrupt, 0);  // no SA_RESTART
  interrupts = 0;
  bulk_writer::written = 0;
  handler_thread = 0;
  handler_busy = false;

  sockserv::tcp_server<bulk_writer> server({"127.0.0.1", 0});
  server.timeout = io_timeout_ms / 1000.0;
  sockserv::file_descriptor client = open_client_socket(AF_INET, SOCK_STREAM);
  shrink_buffers(client.fd());
  REQUIRE(connect_retrying_eintr(client.fd(), server.server_address) == 0);

  std::string received;
  received.reserve(write_size);
  {
    request_thread<decltype(server)> serving(server);
    // Read in small pieces. Before each, signal the serving thread twice
    // while its send is blocked on the full socket buffer: the first
    // signal may end a send that had made progress (a short count), the
    // second then finds a send that has sent nothing yet (EINTR).
    deadline until(30000);
    char piece[8192];
    for (;;) {
      interrupt_when_blocked(serving);
      interrupt_when_blocked(serving);
      if (!wait_readable(client.fd(), until.remaining_ms())) break;
      ssize_t n = ::recv(client.fd(), piece, sizeof piece, 0);
      if (n == -1 && errno == EINTR) continue;
      if (n <= 0) break;
      received.append(piece, static_cast<std::size_t>(n));
    }
  }
  CHECK(interrupts.load() > 0);  // the send really was interrupted
  CHECK(bulk_writer::written.load() == static_cast<long long>(write_size));
  REQUIRE(received.size() == write_size);
  CHECK(received == payload(write_size).substr(0, write_size));
}

TEST_CASE("rfile.read gets every byte, in order, while signals interrupt the receive", "[io][rfile][signal]") {
  (void)payload(read_size);
  scoped_signal_handler handler(SIGUSR1, count_interrupt, 0);
  interrupts = 0;
  handler_thread = 0;
  handler_busy = false;

  sockserv::tcp_server<bulk_reader> server({"127.0.0.1", 0});
  server.timeout = io_timeout_ms / 1000.0;
  sockserv::file_descriptor client = connect_to(server.server_address);
  {
    request_thread<decltype(server)> serving(server);
    // Send in small pieces. Between two pieces the handler can only be
    // asleep in its receive, waiting: signal it there (the wait for that is
    // bounded; where /proc cannot tell, the signal is sent regardless).
    const std::string& data = payload(read_size);
    for (std::size_t at = 0; at < read_size; at += 4096) {
      interrupt_when_blocked(serving);
      send_all(client.fd(), std::string_view(data).substr(at, 4096));
    }
    read_outcome reply = read_until_eof(client.fd());
    CHECK(reply.eof);
    CHECK(reply.data == std::to_string(read_size) + " intact");
  }
  CHECK(interrupts.load() > 0);
}
