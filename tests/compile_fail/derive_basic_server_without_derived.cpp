// Must not compile: deriving from basic_server without passing yourself as
// Derived would leave verify_request unused (every client served); the
// note points at basic_server's final specialization, whose comment says
// to pass your class as Derived.
// expect: final
#include <sockserv.hpp>

struct handler : sockserv::stream_request_handler<> {};
struct refuse_all : sockserv::basic_server<sockserv::inet4, sockserv::stream, handler> {
  using basic_server::basic_server;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) { return false; }
};
int main() { refuse_all server({"127.0.0.1", 0}); }
