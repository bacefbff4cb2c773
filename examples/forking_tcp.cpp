// The seed's ThreadingMixIn example with ForkingMixIn instead: every request
// runs in a child process, and the reply names that child's pid.
//
//   $ build/examples/forking_tcp
//   Server loop running in process: 4242
//   Received: 4243: Hello World 1
//   ...
#include <sockserv.hpp>

#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <sys/socket.h>
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

using forked_server = sockserv::forking_tcp_server<forked_handler>;

void* serve(void* server) {
  sockserv::result served = static_cast<forked_server*>(server)->serve_forever();
  if (!served) std::fprintf(stderr, "serve_forever: %s\n", served.message());
  return nullptr;
}

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
  forked_server server({"localhost", 0});
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message());
    return 1;
  }
  pthread_t loop;
  if (pthread_create(&loop, nullptr, serve, &server) != 0) return 1;
  std::printf("Server loop running in process: %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);

  bool ok = client(server.server_address, "Hello World 1") &&
            client(server.server_address, "Hello World 2") &&
            client(server.server_address, "Hello World 3");

  server.shutdown();
  pthread_join(loop, nullptr);
  server.server_close();  // waits for the children: none is left behind
  std::printf("children still running: %zu\n", server.active_children());
  return ok && server.active_children() == 0 ? 0 : 1;
}
