// The seed's ThreadingMixIn example: a threading TCP server on a port the
// kernel picks, serve_forever() on a background thread, three clients, then
// shutdown. Each reply names the pool worker that handled the request.
//
//   $ build/examples/threaded_tcp
//   Server loop running in thread: serve_forever
//   Received: worker-1: Hello World 1
//   ...
#include <sockserv.hpp>

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

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

using threaded_server = sockserv::threading_tcp_server<threaded_handler>;

void* serve(void* server) {
  sockserv::result served = static_cast<threaded_server*>(server)->serve_forever();
  if (!served) std::fprintf(stderr, "serve_forever: %s\n", served.message());
  return nullptr;
}

// The seed's client(): connect, send the message, print one reply.
bool client(const sockserv::socket_address& server, const char* message) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd == -1 || ::connect(fd, server.data(), server.size()) == -1) {
    std::perror("connect");
    if (fd != -1) ::close(fd);
    return false;
  }
  sockserv::connection sock{fd};
  sock.sendall(message, std::strlen(message));
  char response[1024];
  std::ptrdiff_t n = sock.recv(response, sizeof response);
  ::close(fd);
  if (n <= 0) return false;
  std::printf("Received: %.*s\n", static_cast<int>(n), response);
  return true;
}

}  // namespace

int main() {
  threaded_server server({"localhost", 0});  // port 0: any free port
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message());
    return 1;
  }
  pthread_t loop;
  if (pthread_create(&loop, nullptr, serve, &server) != 0) return 1;
  std::printf("Server loop running in thread: serve_forever\n");

  bool ok = client(server.server_address, "Hello World 1") &&
            client(server.server_address, "Hello World 2") &&
            client(server.server_address, "Hello World 3");

  server.shutdown();
  pthread_join(loop, nullptr);
  return ok ? 0 : 1;
}
