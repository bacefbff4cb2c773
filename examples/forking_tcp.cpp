// The seed's ThreadingMixIn example with ForkingMixIn instead: every request
// runs in a child process, and the reply names that child's pid.
//
//   $ build/examples/forking_tcp
//   Server loop running in process: 4242
//   Received: 4243: Hello World 1
//   ...
// The serving thread (common/seed_server.hpp) and the seed's client()
// (common/seed_client.hpp) are shared with threaded_tcp.
#include <sockserv.hpp>

#include "common/seed_client.hpp"
#include "common/seed_server.hpp"

#include <cstdio>
#include <pthread.h>
#include <unistd.h>

namespace {

struct forked_handler : sockserv::base_request_handler<sockserv::connection> {
  void handle() {
    char data[1024];
    std::ptrdiff_t n = request.recv(data, sizeof data);
    if (n <= 0) return;
    char reply[1100];
    int length = std::snprintf(reply, sizeof reply, "%d: %.*s", static_cast<int>(::getpid()),
                               static_cast<int>(n), data);
    request.sendall(reply, static_cast<std::size_t>(length));
  }
};

}  // namespace

int main() {
  sockserv::forking_tcp_server<forked_handler> server({"localhost", 0});
  if (!server) return common::failed("forking_tcp", server.error());
  pthread_t loop;
  if (!common::start_serve_forever(server, loop)) return 1;
  std::printf("Server loop running in process: %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);

  bool ok = common::client("forking_tcp", server.server_address, "Hello World 1") &&
            common::client("forking_tcp", server.server_address, "Hello World 2") &&
            common::client("forking_tcp", server.server_address, "Hello World 3");

  server.shutdown();
  pthread_join(loop, nullptr);
  server.server_close();  // waits for the children: none is left behind
  std::printf("children still running: %zu\n", server.active_children());
  return ok && server.active_children() == 0 ? 0 : 1;
}
