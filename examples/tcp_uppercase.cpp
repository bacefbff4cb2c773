// tcp_uppercase — the seed's first socketserver.TCPServer example.
//
//   tcp_uppercase [PORT]      (default 9999; 0 lets the kernel choose)
//
// The handler reads from the raw connection with a recv() loop until it has
// a newline (or 10000 bytes), prints what it got and sends it back
// upper-cased. Ctrl-C or SIGTERM stops the server cleanly (exit 0).
// What every seed server does around its handler (the port argument,
// binding, serving until a signal) is in common/seed_server.hpp.
#include <sockserv.hpp>

#include "common/seed_server.hpp"

#include <cstdio>
#include <cstring>

namespace {

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
    common::write(stdout, "Received from ", client_address.host().c_str(), ":\n");
    common::print({data, total});
    for (std::size_t i = 0; i < total; ++i) data[i] = common::ascii_upper(data[i]);
    request.sendall(data, total);
  }  // on return the server shuts the connection down and closes it
};

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 9999;
  if (!common::port_argument(argc, argv, port)) return 2;
  // bind_and_activate = false: serve_until_signal() binds, after setting SO_REUSEADDR.
  sockserv::tcp_server<uppercase_handler> server({"localhost", port}, false);
  return common::serve_until_signal(server, "tcp_uppercase");
}  // leaving scope closes the server (Python's `with`)
