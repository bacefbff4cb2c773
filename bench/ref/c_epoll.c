/* bench/ref/c_epoll.c — the floor of a readiness loop: one thread, epoll
 * (level-triggered), a fixed buffer per descriptor, non-blocking sockets. */
#include "c_common.h"

#include <sys/epoll.h>

#define MAX_FDS 4096
#define BUF 2048
static struct { size_t have; char bytes[BUF]; } conns[MAX_FDS];

int main(int argc, char **argv) {
  struct server_config c = parse_args(argc, argv);
  int listener = open_server(&c);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  struct epoll_event ready[256];
  for (;;) {
    int n = epoll_wait(ep, ready, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) continue;
        if (conn >= MAX_FDS) { close(conn); continue; }
        conns[conn].have = 0;
        struct epoll_event add = {.events = EPOLLIN, .data.fd = conn};
        epoll_ctl(ep, EPOLL_CTL_ADD, conn, &add);
        continue;
      }
      ssize_t r = read(fd, conns[fd].bytes + conns[fd].have, BUF - conns[fd].have);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      /* Replies are 64 bytes against an empty socket buffer: a blocking-free
       * send never comes back short here, so no write queue is kept. */
      if (r <= 0 || (conns[fd].have += (size_t)r,
                     answer_lines(fd, c.mode, conns[fd].bytes, &conns[fd].have, BUF) < 0))
        close(fd);  /* also leaves the epoll set */
    }
  }
}
