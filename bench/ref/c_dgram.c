/* bench/ref/c_dgram.c — the floor of a datagram server: a blocking
 * recvfrom/sendto loop on one socket. */
#include "c_common.h"

int main(int argc, char **argv) {
  struct server_config c = parse_args(argc, argv);
  int fd = open_server(&c);
  char buf[8192];
  for (;;) {
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n < 0) continue;
    if (c.mode == MODE_ONCE) upper(buf, (size_t)n);
    if (len > sizeof(sa_family_t)) sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  }
}
