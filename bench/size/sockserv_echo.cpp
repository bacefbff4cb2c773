// bench/size/sockserv_echo.cpp — the smallest complete sockserv line-echo
// server over TCP, for the binary-size table: every line a client sends
// comes back, until it closes. Port from argv[1] (default 9999).
#include <sockserv.hpp>

#include <cstdio>
#include <cstdlib>

struct echo : sockserv::stream_request_handler<> {
  void handle() {
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline())
      if (wfile.write(line) == -1) return;
  }
};

int main(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 9999);
  sockserv::tcp_server<echo> server({"127.0.0.1", port});
  if (!server) return std::fprintf(stderr, "%s\n", server.error().message()), 1;
  return server.serve_forever() ? 0 : 1;
}
