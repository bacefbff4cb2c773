// udp_client — the seed's UDP client: sends its words and a newline as one
// datagram, prints the one reply it receives.
//
//   udp_client [--port N] [--host H] words...     (default localhost:9999)
//
// H is numeric ("127.0.0.1", "::1") or "localhost": like the library, no
// name resolution. Output is exactly the Python client's:
//   Sent:     python is nice
//   Received: PYTHON IS NICE
// The arguments and the output lines are shared with tcp_client in
// common/seed_client.hpp.
#include <sockserv.hpp>

#include "common/seed_client.hpp"

#include <sys/socket.h>

constexpr char program[] = "udp_client";  // for messages

int main(int argc, char** argv) {
  common::client_request request;
  if (!common::parse_client_arguments(argc, argv, program, request)) return 2;
  sockserv::file_descriptor sock = common::client_socket(request.server, SOCK_DGRAM);
  if (!sock.is_open()) return common::failed(program, "socket");

  // No connect(): UDP has no connection; the datagram carries its address.
  std::string_view line = request.line();  // the words and the newline go out as one datagram
  if (::sendto(sock.fd(), line.data(), line.size(), 0, request.server.data(), request.server.size()) == -1)
    return common::failed(program, "sendto");
  common::reply received;  // one recv(1024), as in the seed
  ssize_t n = ::recv(sock.fd(), received.data, sizeof received.data, 0);
  if (n == -1) return common::failed(program, "recv");
  received.size = static_cast<std::size_t>(n);

  common::print_exchange(request, received);
  return 0;
}
