// Must not compile: a 64 KiB read buffer on a 32 KiB worker stack.
// expect: does not fit a worker's stack
#include <sockserv.hpp>

struct big : sockserv::stream_request_handler<65536> {};
int main() {
  sockserv::basic_server<sockserv::inet4, sockserv::stream, big, sockserv::threading<2, 32 * 1024>> server(
      {"127.0.0.1", 0});
}
