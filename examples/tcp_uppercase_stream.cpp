// tcp_uppercase_stream — the seed's TCP server with a StreamRequestHandler.
//
//   tcp_uppercase_stream [PORT]      (default 9999; 0 lets the kernel choose)
//
// rfile.readline() does the recv() loop of tcp_uppercase for us; wfile.write()
// sends the reply at once and completely. Ctrl-C or SIGTERM stops it (exit 0).
// The port argument, binding and serving until a signal: common/seed_server.hpp.
#include <sockserv.hpp>

#include "common/seed_server.hpp"

#include <cstdio>

namespace {

struct uppercase_handler : sockserv::stream_request_handler<> {
  void handle() {
    // At most 10000 bytes, to stop a sender from flooding us (and never more
    // than rfile's buffer, rbufsize = 8192 here).
    std::string_view data = common::rstrip(rfile.readline(10000));
    common::write(stdout, client_address.host().c_str(), " wrote:\n");
    common::print(data);

    // data points into rfile's buffer: upper-case a copy.
    char upper[rbufsize];
    for (std::size_t i = 0; i < data.size(); ++i) upper[i] = common::ascii_upper(data[i]);
    wfile.write(upper, data.size());
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 9999;
  if (!common::port_argument(argc, argv, port)) return 2;
  // Not bound yet: serve_until_signal() sets SO_REUSEADDR first.
  sockserv::tcp_server<uppercase_handler> server({"localhost", port}, false);
  return common::serve_until_signal(server, "tcp_uppercase_stream");
}  // leaving scope closes the server (Python's `with`)
