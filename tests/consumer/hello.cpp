// hello — the smallest real user of sockserv, built against the library as
// a user gets it: the one vendored header, or the installed copy through
// pkg-config or CMake's find_package(sockserv). No -I into this repository.
//
// One thread, no timing: bind a TCP server on 127.0.0.1:0, connect a plain
// client socket (the kernel completes the handshake into the backlog), send
// a line, let handle_request() serve it, read the upper-cased reply.
// Exit 0 and "hello: ok" when the reply is right. Built with
// -DEXPECTED_VERSION="..." (the version the build system reports), it also
// checks that the build system and sockserv/version.hpp agree.
#include <sockserv.hpp>

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

struct upper_handler : sockserv::stream_request_handler<256> {
  void handle() {
    auto line = rfile.readline();
    char reply[256];
    std::size_t n = 0;
    for (char c : line) reply[n++] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    wfile.write(reply, n);
  }
};

int fail(const char* what) {
  std::fprintf(stderr, "hello: %s\n", what);
  return 1;
}

}  // namespace

int main() {
#ifdef EXPECTED_VERSION
  if (std::strcmp(EXPECTED_VERSION, SOCKSERV_VERSION_STRING) != 0)
    return fail("the build system's version (" EXPECTED_VERSION ") is not sockserv/version.hpp's (" SOCKSERV_VERSION_STRING ")");
#endif
  sockserv::tcp_server<upper_handler> server({"127.0.0.1", 0});
  if (!server) return fail(server.error().message());

  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.server_address.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return fail("connect");
  const char line[] = "hello, vendored world\n";
  if (::send(client, line, sizeof line - 1, 0) != static_cast<ssize_t>(sizeof line - 1)) return fail("send");

  sockserv::result served = server.handle_request();
  if (!served) return fail(served.message());

  char reply[64] = {};
  std::size_t got = 0;
  while (got < sizeof line - 1) {
    ssize_t n = ::recv(client, reply + got, sizeof reply - 1 - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(client);
  if (std::strcmp(reply, "HELLO, VENDORED WORLD\n") != 0) return fail("wrong reply");
  std::printf("hello: ok (sockserv %s, %s)\n", sockserv::version_string, server.server_address.to_string().c_str());
  return 0;
}
