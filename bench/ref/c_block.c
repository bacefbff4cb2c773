/* bench/ref/c_block.c — the floor of a blocking, one-at-a-time stream
 * server: accept, serve the connection to its end, close, accept again. */
#include "c_common.h"

int main(int argc, char **argv) {
  struct server_config c = parse_args(argc, argv);
  int listener = open_server(&c);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve_connection(fd, c.mode);
  }
}
