// The seed's ThreadingMixIn example: a threading TCP server on a port the
// kernel picks, serve_forever() on a background thread, three clients, then
// shutdown. Each reply names the pool worker that handled the request.
//
//   $ build/examples/threaded_tcp
//   Server loop running in thread: serve_forever
//   Received: worker-1: Hello World 1
//   ...
// The serving thread (common/seed_server.hpp) and the seed's client()
// (common/seed_client.hpp) are shared with forking_tcp.
#include <sockserv.hpp>

#include "common/seed_client.hpp"
#include "common/seed_server.hpp"

#include <cstdio>
#include <pthread.h>

namespace {

struct threaded_handler : sockserv::base_request_handler<sockserv::connection> {
  void handle() {
    char data[1024];
    std::ptrdiff_t n = request.recv(data, sizeof data);
    if (n <= 0) return;
    char reply[1100];
    int length = std::snprintf(reply, sizeof reply, "worker-%u: %.*s", sockserv::this_worker_number(),
                               static_cast<int>(n), data);
    request.sendall(reply, static_cast<std::size_t>(length));
  }
};

}  // namespace

int main() {
  sockserv::threading_tcp_server<threaded_handler> server({"localhost", 0});  // port 0: any free port
  if (!server) return common::failed("threaded_tcp", server.error());
  pthread_t loop;
  if (!common::start_serve_forever(server, loop)) return 1;
  std::printf("Server loop running in thread: serve_forever\n");

  bool ok = common::client("threaded_tcp", server.server_address, "Hello World 1") &&
            common::client("threaded_tcp", server.server_address, "Hello World 2") &&
            common::client("threaded_tcp", server.server_address, "Hello World 3");

  server.shutdown();
  pthread_join(loop, nullptr);
  return ok ? 0 : 1;
}
