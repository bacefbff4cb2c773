// udp_uppercase — the seed's socketserver.UDPServer example.
//
//   udp_uppercase [PORT]      (default 9999; 0 lets the kernel choose)
//
// A datagram request is the packet plus the server socket (Python's
// request[0] and request[1]); there is no connection, so the reply is sent
// with sendto() to client_address. Ctrl-C or SIGTERM stops it (exit 0).
#include <sockserv.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// The seed prints the bytes object itself, so show it as Python's repr()
// does: b'python is nice'.
void print_bytes_repr(std::string_view data) {
  bool has_single = data.find('\'') != std::string_view::npos;
  char quote = has_single && data.find('"') == std::string_view::npos ? '"' : '\'';
  std::printf("b%c", quote);
  for (char c : data) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '\\' || c == quote) std::printf("\\%c", c);
    else if (c == '\n') std::printf("\\n");
    else if (c == '\r') std::printf("\\r");
    else if (c == '\t') std::printf("\\t");
    else if (byte < 0x20 || byte >= 0x7f) std::printf("\\x%02x", byte);
    else std::putchar(c);
  }
  std::printf("%c\n", quote);
}

struct uppercase_handler : sockserv::base_request_handler<sockserv::datagram_request> {
  void handle() {
    std::string_view data = request.data;  // Python's request[0]
    while (!data.empty() && is_space(data.front())) data.remove_prefix(1);  // strip()
    while (!data.empty() && is_space(data.back())) data.remove_suffix(1);
    std::printf("%s wrote:\n", client_address.host().c_str());
    print_bytes_repr(data);

    char upper[sockserv::datagram<>::max_packet_size];  // a packet never exceeds this
    for (std::size_t i = 0; i < data.size(); ++i) upper[i] = ascii_upper(data[i]);
    request.sendto(upper, data.size(), client_address);  // from request[1], the server socket
  }
};

using server_type = sockserv::udp_server<uppercase_handler>;

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

  // Bind by hand so SO_REUSEADDR is set before bind() (restarts always work).
  server_type server({"localhost", port}, false);
  server.allow_reuse_address = true;
  sockserv::result ready = server ? server.server_bind() : server.error();
  if (ready) ready = server.server_activate();  // nothing to listen() for, but harmless
  if (!ready) {
    std::fprintf(stderr, "udp_uppercase: %s\n", ready.message());
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
    std::fprintf(stderr, "udp_uppercase: %s\n", served.message());
    return 1;
  }
  return 0;  // leaving scope closes the server (Python's `with`)
}
