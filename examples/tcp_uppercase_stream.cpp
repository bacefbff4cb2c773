// tcp_uppercase_stream — the seed's TCP server with a StreamRequestHandler.
//
//   tcp_uppercase_stream [PORT]      (default 9999; 0 lets the kernel choose)
//
// rfile.readline() does the recv() loop of tcp_uppercase for us; wfile.write()
// sends the reply at once and completely. Ctrl-C or SIGTERM stops it (exit 0).
#include <sockserv.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace {

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

struct uppercase_handler : sockserv::stream_request_handler<> {
  void handle() {
    // At most 10000 bytes, to stop a sender from flooding us (and never more
    // than rfile's buffer, rbufsize = 8192 here).
    std::string_view data = rfile.readline(10000);
    while (!data.empty() && is_space(data.back())) data.remove_suffix(1);  // Python's rstrip()
    std::printf("%s wrote:\n%.*s\n", client_address.host().c_str(), static_cast<int>(data.size()), data.data());

    // data points into rfile's buffer: upper-case a copy.
    char upper[rbufsize];
    for (std::size_t i = 0; i < data.size(); ++i) upper[i] = ascii_upper(data[i]);
    wfile.write(upper, data.size());
  }
};

using server_type = sockserv::tcp_server<uppercase_handler>;

// request_shutdown() is async-signal-safe: serve_forever() returns at once.
std::atomic<server_type*> running{nullptr};
extern "C" void stop(int) {
  if (server_type* server = running.load()) server->request_shutdown();
}

bool parse_port(const char* text, std::uint16_t& port) {
  char* end = nullptr;
  unsigned long value = std::strtoul(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value > 65535) return false;
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

  // Bind by hand so SO_REUSEADDR is set first: restarting then works even
  // while the last run's connections linger in TIME_WAIT.
  server_type server({"localhost", port}, false);
  server.allow_reuse_address = true;
  sockserv::result ready = server ? server.server_bind() : server.error();
  if (ready) ready = server.server_activate();
  if (!ready) {
    std::fprintf(stderr, "tcp_uppercase_stream: %s\n", ready.message());
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
    std::fprintf(stderr, "tcp_uppercase_stream: %s\n", served.message());
    return 1;
  }
  return 0;  // leaving scope closes the server (Python's `with`)
}
