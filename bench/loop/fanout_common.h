/* bench/loop/fanout_common.h — what the C fan-out references share: the
 * command line and the listening socket.
 *
 *   SERVER --listen 127.0.0.1:PORT [--backlog N]
 *
 * Port 0: the kernel chooses. Once listening the server prints
 * "listening on 127.0.0.1:PORT". The service (the chat pattern): every
 * complete line a client sends goes to every *other* connected client. */
#ifndef BENCH_FANOUT_COMMON_H
#define BENCH_FANOUT_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int fanout_listen(int argc, char **argv) {
  const char *where = NULL;
  int backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--listen")) where = argv[i + 1];
    else if (!strcmp(argv[i], "--backlog")) backlog = atoi(argv[i + 1]);
  }
  if (!where || !strrchr(where, ':')) {
    fprintf(stderr, "usage: %s --listen 127.0.0.1:PORT [--backlog N]\n", argv[0]);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in in = {.sin_family = AF_INET};
  in.sin_port = htons((unsigned short)atoi(strrchr(where, ':') + 1));
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, backlog) < 0) {
    perror("bind/listen");
    exit(1);
  }
  socklen_t len = sizeof in;
  getsockname(fd, (struct sockaddr *)&in, &len);
  printf("listening on 127.0.0.1:%u\n", ntohs(in.sin_port));
  fflush(stdout);
  return fd;
}

#endif
