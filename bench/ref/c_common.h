/* bench/ref/c_common.h — what the hand-written C reference servers share:
 * arguments, the listening/bound socket, and the line service itself.
 *
 *   SERVER --family tcp|udp|unix|unix-dgram --listen ADDR
 *          [--mode echo|once] [--backlog N]
 *
 * ADDR is 127.0.0.1:PORT (port 0: the kernel chooses) or a unix path. Once
 * bound the server prints "listening on ADDR" and serves until killed.
 * These are the floor: no framework, the fewest system calls the service
 * needs, nothing done per request that the service does not require. */
#ifndef BENCH_C_COMMON_H
#define BENCH_C_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { MODE_ECHO, MODE_ONCE };

struct server_config {
  int domain;  /* AF_INET or AF_UNIX */
  int type;    /* SOCK_STREAM or SOCK_DGRAM */
  int mode;
  int backlog;
  const char *listen;
};

static inline void fail(const char *what) {
  perror(what);
  exit(1);
}

static inline struct server_config parse_args(int argc, char **argv) {
  struct server_config c = {AF_INET, SOCK_STREAM, MODE_ECHO, 1024, NULL};
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--family")) {
      c.domain = (!strcmp(v, "tcp") || !strcmp(v, "udp")) ? AF_INET : AF_UNIX;
      c.type = (!strcmp(v, "tcp") || !strcmp(v, "unix")) ? SOCK_STREAM : SOCK_DGRAM;
    } else if (!strcmp(k, "--listen")) {
      c.listen = v;
    } else if (!strcmp(k, "--mode")) {
      c.mode = !strcmp(v, "once") ? MODE_ONCE : MODE_ECHO;
    } else if (!strcmp(k, "--backlog")) {
      c.backlog = atoi(v);
    }
  }
  if (!c.listen) {
    fprintf(stderr, "usage: %s --family tcp|udp|unix|unix-dgram --listen ADDR [--mode echo|once] [--backlog N]\n",
            argv[0]);
    exit(2);
  }
  return c;
}

/* Binds (and listens, for streams); prints the address. */
static inline int open_server(const struct server_config *c) {
  int fd = socket(c->domain, c->type | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  if (c->domain == AF_INET) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in in = {.sin_family = AF_INET};
    const char *colon = strrchr(c->listen, ':');
    if (!colon) fail("--listen wants HOST:PORT");
    in.sin_port = htons((unsigned short)atoi(colon + 1));
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&in, sizeof in) < 0) fail("bind");
    socklen_t len = sizeof in;
    getsockname(fd, (struct sockaddr *)&in, &len);
    if (c->type == SOCK_STREAM && listen(fd, c->backlog) < 0) fail("listen");
    printf("listening on 127.0.0.1:%u\n", ntohs(in.sin_port));
  } else {
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", c->listen);
    unlink(c->listen);
    if (bind(fd, (struct sockaddr *)&un, sizeof un) < 0) fail("bind");
    if (c->type == SOCK_STREAM && listen(fd, c->backlog) < 0) fail("listen");
    printf("listening on %s\n", c->listen);
  }
  fflush(stdout);
  return fd;
}

static inline void upper(char *p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] >= 'a' && p[i] <= 'z') p[i] = (char)(p[i] - 'a' + 'A');
}

static inline int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Complete lines at the front of buf[0..*have) are answered; the rest is
 * kept. A line longer than the buffer is answered in pieces. Returns -1
 * when the connection should close (once mode: after the first line). */
static inline int answer_lines(int fd, int mode, char *buf, size_t *have, size_t capacity) {
  char *end = memrchr(buf, '\n', *have);
  size_t n = end ? (size_t)(end - buf) + 1 : (*have == capacity ? *have : 0);
  if (n == 0) return 0;
  if (mode == MODE_ONCE) {
    char *first = memchr(buf, '\n', n);
    n = first ? (size_t)(first - buf) + 1 : n;
    upper(buf, n);
    send_all(fd, buf, n);
    return -1;
  }
  if (send_all(fd, buf, n) < 0) return -1;
  memmove(buf, buf + n, *have - n);
  *have -= n;
  return 0;
}

/* The whole service on one blocking connection (block and fork floors). */
static inline void serve_connection(int fd, int mode) {
  char buf[8192];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
    if (answer_lines(fd, mode, buf, &have, sizeof buf) < 0) break;
  }
  close(fd);
}

#endif
