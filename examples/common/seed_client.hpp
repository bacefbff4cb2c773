// examples/common/seed_client.hpp — the seed's client side, written once:
//   parse_client_arguments()  [--port N] [--host H] words... (tcp_client,
//                             udp_client): the server's address, the message;
//   client_socket()           a socket that gives up on a silent server;
//   tcp_exchange()            connect, sendall, one recv(1024);
//   print_exchange()          the seed's "Sent:" and "Received:" lines;
//   client()                  the ThreadingMixIn example's client().
#pragma once

#include <sockserv.hpp>

#include "text.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>

namespace common {

// "localhost" or a numeric IPv4 or IPv6 address: no name resolution.
inline bool to_address(const char* host, std::uint16_t port, sockserv::socket_address& out) {
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

// What a client's command line asks for: where to send, and
// data = " ".join(sys.argv[1:]), kept with the newline the seed sends after it.
struct client_request {
  sockserv::socket_address server;
  char data[4096];
  std::size_t length = 0;  // without the newline
  std::string_view words() const { return {data, length}; }
  std::string_view line() const { return {data, length + 1}; }  // data + "\n"
};

// [--port N] [--host H] words...   (default localhost:9999). False after
// printing why (the caller exits 2).
inline bool parse_client_arguments(int argc, char** argv, const char* program, client_request& out) {
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
    if (first_word + 1 >= argc || (option[2] == 'p' && !parse_port(argv[first_word + 1], port))) {
      std::fprintf(stderr, "usage: %s [--port N] [--host H] words...\n", argv[0]);
      return false;
    }
    if (option[2] == 'h') host = argv[first_word + 1];
  }

  out.length = 0;
  for (int i = first_word; i < argc; ++i) {
    std::size_t room = sizeof out.data - out.length;
    int n = std::snprintf(out.data + out.length, room, i > first_word ? " %s" : "%s", argv[i]);
    if (n < 0 || static_cast<std::size_t>(n) >= room) {
      std::fprintf(stderr, "%s: message longer than %zu bytes\n", program, sizeof out.data - 1);
      return false;
    }
    out.length += static_cast<std::size_t>(n);
  }
  out.data[out.length] = '\n';  // where snprintf's NUL was: the line needs none

  if (!to_address(host, port, out.server)) {
    std::fprintf(stderr, "%s: bad host '%s' (numeric address or localhost)\n", program, host);
    return false;
  }
  return true;
}

// "program: what: strerror(errno)" on stderr; returns the exit status, 1.
inline int failed(const char* program, const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(errno));
  return 1;
}

// A SOCK_STREAM or SOCK_DGRAM socket for talking to server. Unlike the
// Python clients it gives up after 10 s without a reply: a silent server, or
// a lost datagram (UDP may lose either), must not hang the client.
inline sockserv::file_descriptor client_socket(const sockserv::socket_address& server, int type) {
  sockserv::file_descriptor sock(::socket(server.family(), type | SOCK_CLOEXEC, 0));
  timeval patience{10, 0};
  if (sock.is_open()) ::setsockopt(sock.fd(), SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  return sock;
}

// The one reply the seed's clients read: a single recv(1024).
struct reply {
  char data[1024];
  std::size_t size = 0;  // 0: the server closed without a word
  std::string_view text() const { return {data, size}; }
};

// The seed's TCP exchange: sock.connect(server); sock.sendall(message);
// sock.recv(1024). False after printing what failed ("program: connect:
// Connection refused").
inline bool tcp_exchange(const char* program, const sockserv::socket_address& server, std::string_view message,
                         reply& out) {
  auto fail = [program](const char* what) {
    failed(program, what);
    return false;
  };
  sockserv::file_descriptor sock = client_socket(server, SOCK_STREAM);
  if (!sock.is_open()) return fail("socket");
  if (::connect(sock.fd(), server.data(), server.size()) == -1) return fail("connect");
  sockserv::connection link{sock.fd()};
  if (link.sendall(message.data(), message.size()) == -1) return fail("send");
  std::ptrdiff_t n = link.recv(out.data, sizeof out.data);
  if (n == -1) return fail("recv");
  out.size = static_cast<std::size_t>(n);
  return true;
}

// The seed's client output, exactly as Python prints it:
//   Sent:     hello world with TCP
//   Received: HELLO WORLD WITH TCP
inline void print_exchange(const client_request& request, const reply& received) {
  print("Sent:     ", request.words());
  print("Received: ", received.text());
}

// The ThreadingMixIn example's client(ip, port, message): one exchange,
// the reply printed as "Received: ...". False if there was no reply.
inline bool client(const char* program, const sockserv::socket_address& server, const char* message) {
  reply received;
  if (!tcp_exchange(program, server, message, received) || received.size == 0) return false;
  print("Received: ", received.text());
  return true;
}

}  // namespace common
