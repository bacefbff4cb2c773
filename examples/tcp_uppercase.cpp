// tcp_uppercase — the seed's first socketserver.TCPServer example.
//
//   tcp_uppercase [PORT]      (default 9999; 0 lets the kernel choose)
//
// The handler reads from the raw connection with a recv() loop until it has
// a newline (or 10000 bytes), prints what it got and sends it back
// upper-cased. Ctrl-C or SIGTERM stops the server cleanly (exit 0).
#include <sockserv.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// One handler object per connection, built by the server on its stack.
struct uppercase_handler : sockserv::base_request_handler<sockserv::connection> {
  void handle() {
    // TCP has no message boundaries: one recv() may return part of a line,
    // so keep reading until the newline arrives (or the sender stops).
    static constexpr std::size_t limit = 10000;
    char data[limit + 2000];
    std::size_t total = 0;
    while (total < limit && std::memchr(data, '\n', total) == nullptr) {
      std::ptrdiff_t n = request.recv(data + total, 2000);
      if (n <= 0) break;  // end of stream or error: answer what we have
      total += static_cast<std::size_t>(n);
    }
    std::printf("Received from %s:\n%.*s\n", client_address.host().c_str(), static_cast<int>(total), data);
    for (std::size_t i = 0; i < total; ++i) data[i] = ascii_upper(data[i]);
    request.sendall(data, total);
  }  // on return the server shuts the connection down and closes it
};

using server_type = sockserv::tcp_server<uppercase_handler>;

// request_shutdown() is async-signal-safe: it sets a flag and writes one
// byte to the server's wake-up pipe, so serve_forever() returns at once.
std::atomic<server_type*> running{nullptr};
extern "C" void stop(int) {
  if (server_type* server = running.load()) server->request_shutdown();
}

// Digits only, at most 65535. A loop rather than strtoul(), whose general
// number scanner is 2.4 KiB of this program's 32 KiB static musl budget.
bool parse_port(const char* text, std::uint16_t& port) {
  if (*text == '\0') return false;
  unsigned value = 0;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9') return false;
    value = value * 10 + static_cast<unsigned>(*text - '0');
    if (value > 65535) return false;
  }
  port = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 9999;
  if (argc > 2 || (argc == 2 && !parse_port(argv[1], port))) {
    std::fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // show each line at once, even into a pipe

  // bind_and_activate = false: SO_REUSEADDR must be set before bind, so a
  // restarted server does not fail on the previous run's TIME_WAIT sockets.
  server_type server({"localhost", port}, false);
  server.allow_reuse_address = true;
  sockserv::result ready = server ? server.server_bind() : server.error();
  if (ready) ready = server.server_activate();
  if (!ready) {
    std::fprintf(stderr, "tcp_uppercase: %s\n", ready.message());  // "bind 127.0.0.1:9999: Address already in use"
    return 1;
  }
  std::printf("listening on %s\n", server.server_address.to_string().c_str());

  running = &server;
  struct sigaction on_stop {};
  on_stop.sa_handler = stop;
  on_stop.sa_flags = SA_RESTART;
  sigaction(SIGINT, &on_stop, nullptr);
  sigaction(SIGTERM, &on_stop, nullptr);

  sockserv::result served = server.serve_forever();
  running = nullptr;
  if (!served) {
    std::fprintf(stderr, "tcp_uppercase: %s\n", served.message());
    return 1;
  }
  return 0;  // leaving scope closes the server (Python's `with`)
}
