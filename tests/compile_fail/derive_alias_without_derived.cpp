// Must not compile: deriving from an alias without passing yourself as
// Derived would leave verify_request unused (every client served).
// expect: pass_your_class_as_Derived_to_derive_from
#include <sockserv.hpp>

struct handler : sockserv::stream_request_handler<> {};
struct refuse_all : sockserv::tcp_server<handler> {
  using tcp_server::tcp_server;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) { return false; }
};
int main() { refuse_all server({"127.0.0.1", 0}); }
