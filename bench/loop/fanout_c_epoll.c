/* bench/loop/fanout_c_epoll.c — the floor of a broadcast server: one
 * thread, level-triggered epoll, a dense array of connected clients, a
 * fixed input and output buffer per descriptor. The complete lines of one
 * read go to every other client with one send() each; what a socket does
 * not take at once is queued (EPOLLOUT armed), and a message that does not
 * fit the queue is dropped (the load generator reports the gap). */
#include "fanout_common.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>

#define MAX_FDS 4096
#define IN_BUF 2048
#define OUT_BUF 4096

static struct conn {
  int index;  /* in clients[], -1 when not connected */
  size_t in_have, out_have;
  char in[IN_BUF];
  char out[OUT_BUF];
} conns[MAX_FDS];
static int clients[MAX_FDS];
static int client_count;
static int ep;

static void drop_client(int fd) {
  int i = conns[fd].index;
  clients[i] = clients[--client_count];
  conns[clients[i]].index = i;
  conns[fd].index = -1;
  close(fd); /* also leaves the epoll set */
}

static void watch(int fd, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  epoll_ctl(ep, op, fd, &ev);
}

/* Sends what is queued; 0 when the socket broke. */
static int flush_out(int fd) {
  struct conn *c = &conns[fd];
  size_t sent = 0;
  while (sent < c->out_have) {
    ssize_t w = send(fd, c->out + sent, c->out_have - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) { sent += (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    return 0;
  }
  memmove(c->out, c->out + sent, c->out_have - sent);
  c->out_have -= sent;
  watch(fd, EPOLL_CTL_MOD, EPOLLIN | (c->out_have ? EPOLLOUT : 0u));
  return 1;
}

/* To one client: straight to the socket when nothing is queued. */
static void deliver(int fd, const char *p, size_t n) {
  struct conn *c = &conns[fd];
  if (c->out_have == 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w == (ssize_t)n) return;
    if (w < 0) w = 0;
    p += w;
    n -= (size_t)w;
    watch(fd, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
  }
  if (n > OUT_BUF - c->out_have) return; /* dropped */
  memcpy(c->out + c->out_have, p, n);
  c->out_have += n;
}

int main(int argc, char **argv) {
  int listener = fanout_listen(argc, argv);
  for (int i = 0; i < MAX_FDS; ++i) conns[i].index = -1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  watch(listener, EPOLL_CTL_ADD, EPOLLIN);
  struct epoll_event ready[256];
  for (;;) {
    int n = epoll_wait(ep, ready, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) continue;
        if (conn >= MAX_FDS) { close(conn); continue; }
        int one = 1;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[conn].in_have = conns[conn].out_have = 0;
        conns[conn].index = client_count;
        clients[client_count++] = conn;
        watch(conn, EPOLL_CTL_ADD, EPOLLIN);
        continue;
      }
      struct conn *c = &conns[fd];
      if (c->index < 0) continue; /* closed earlier in this batch */
      if ((ready[i].events & EPOLLOUT) && !flush_out(fd)) { drop_client(fd); continue; }
      if (!(ready[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      ssize_t r = read(fd, c->in + c->in_have, IN_BUF - c->in_have);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) { drop_client(fd); continue; }
      c->in_have += (size_t)r;
      char *end = memrchr(c->in, '\n', c->in_have);
      size_t lines = end ? (size_t)(end - c->in) + 1 : (c->in_have == IN_BUF ? IN_BUF : 0);
      if (lines == 0) continue;
      for (int k = 0; k < client_count; ++k)
        if (clients[k] != fd) deliver(clients[k], c->in, lines);
      memmove(c->in, c->in + lines, c->in_have - lines);
      c->in_have -= lines;
    }
  }
}
