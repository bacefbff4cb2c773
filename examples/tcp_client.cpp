// tcp_client — the seed's TCP client: sends its words and a newline, prints
// the one reply it receives.
//
//   tcp_client [--port N] [--host H] words...     (default localhost:9999)
//
// H is numeric ("127.0.0.1", "::1") or "localhost": like the library, no
// name resolution. Output is exactly the Python client's:
//   Sent:     hello world with TCP
//   Received: HELLO WORLD WITH TCP
// The arguments, the exchange and the output lines are shared with the other
// clients in common/seed_client.hpp.
#include <sockserv.hpp>

#include "common/seed_client.hpp"

int main(int argc, char** argv) {
  common::client_request request;
  if (!common::parse_client_arguments(argc, argv, "tcp_client", request)) return 2;

  // with socket.socket(...) as sock: connect, sendall(data + "\n"), recv(1024)
  common::reply received;
  if (!common::tcp_exchange("tcp_client", request.server, request.line(), received)) return 1;

  common::print_exchange(request, received);
  return 0;
}
