// tcp_client — the seed's TCP client: sends its words and a newline, prints
// the one reply it receives.
//
//   tcp_client [--port N] [--host H] words...     (default localhost:9999)
//
// H is numeric ("127.0.0.1", "::1") or "localhost": like the library, no
// name resolution. Output is exactly the Python client's:
//   Sent:     hello world with TCP
//   Received: HELLO WORLD WITH TCP
#include <sockserv.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace {

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--port N] [--host H] words...\n", program);
  return 2;
}

bool parse_port(const char* text, std::uint16_t& port) {
  char* end = nullptr;
  unsigned long value = std::strtoul(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// "localhost" or a numeric IPv4 or IPv6 address: no name resolution.
bool to_address(const char* host, std::uint16_t port, sockserv::socket_address& out) {
  if (std::strcmp(host, "localhost") == 0) host = "127.0.0.1";
  sockaddr_in& v4 = out.as<sockaddr_in>();
  v4 = sockaddr_in{};
  if (::inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    out.set_size(sizeof v4);
    return true;
  }
  sockaddr_in6& v6 = out.as<sockaddr_in6>();
  v6 = sockaddr_in6{};
  if (::inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    out.set_size(sizeof v6);
    return true;
  }
  return false;
}

int fail(const char* what) {
  std::fprintf(stderr, "tcp_client: %s: %s\n", what, std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* host = "localhost";
  std::uint16_t port = 9999;
  int first_word = 1;
  for (; first_word < argc; first_word += 2) {
    const char* option = argv[first_word];
    if (std::strcmp(option, "--") == 0) {
      ++first_word;
      break;
    }
    if (std::strcmp(option, "--port") != 0 && std::strcmp(option, "--host") != 0) break;
    if (first_word + 1 >= argc) return usage(argv[0]);
    if (option[2] == 'h') host = argv[first_word + 1];
    else if (!parse_port(argv[first_word + 1], port)) return usage(argv[0]);
  }

  // data = " ".join(sys.argv[1:])
  char data[4096];
  std::size_t length = 0;
  for (int i = first_word; i < argc; ++i) {
    int n = std::snprintf(data + length, sizeof data - length, i > first_word ? " %s" : "%s", argv[i]);
    if (n < 0 || static_cast<std::size_t>(n) >= sizeof data - length) {
      std::fprintf(stderr, "tcp_client: message longer than %zu bytes\n", sizeof data - 1);
      return 2;
    }
    length += static_cast<std::size_t>(n);
  }

  sockserv::socket_address server;
  if (!to_address(host, port, server)) {
    std::fprintf(stderr, "tcp_client: bad host '%s' (numeric address or localhost)\n", host);
    return 2;
  }
  sockserv::file_descriptor sock(::socket(server.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.is_open()) return fail("socket");
  timeval patience{10, 0};  // unlike the Python client, give up on a silent server
  ::setsockopt(sock.fd(), SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  if (::connect(sock.fd(), server.data(), server.size()) == -1) return fail("connect");

  sockserv::connection link{sock.fd()};
  if (link.sendall(data, length) == -1 || link.sendall("\n", 1) == -1) return fail("send");
  char received[1024];  // one recv(1024), as in the seed
  std::ptrdiff_t n = link.recv(received, sizeof received);
  if (n == -1) return fail("recv");

  std::printf("Sent:     %.*s\n", static_cast<int>(length), data);
  std::printf("Received: %.*s\n", static_cast<int>(n), received);
  return 0;
}
