// udp_uppercase — the seed's socketserver.UDPServer example.
//
//   udp_uppercase [PORT]      (default 9999; 0 lets the kernel choose)
//
// A datagram request is the packet plus the server socket (Python's
// request[0] and request[1]); there is no connection, so the reply is sent
// with sendto() to client_address. Ctrl-C or SIGTERM stops it (exit 0).
// The port argument, binding and serving until a signal: common/seed_server.hpp.
#include <sockserv.hpp>

#include "common/seed_server.hpp"

#include <cstdio>

namespace {

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
    std::string_view data = common::strip(request.data);  // Python's request[0].strip()
    std::printf("%s wrote:\n", client_address.host().c_str());
    print_bytes_repr(data);

    char upper[sockserv::datagram<>::max_packet_size];  // a packet never exceeds this
    for (std::size_t i = 0; i < data.size(); ++i) upper[i] = common::ascii_upper(data[i]);
    request.sendto(upper, data.size(), client_address);  // from request[1], the server socket
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 9999;
  if (!common::port_argument(argc, argv, port)) return 2;
  // Not bound yet: serve_until_signal() sets SO_REUSEADDR first.
  sockserv::udp_server<uppercase_handler> server({"localhost", port}, false);
  return common::serve_until_signal(server, "udp_uppercase");
}  // leaving scope closes the server (Python's `with`)
