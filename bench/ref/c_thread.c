/* bench/ref/c_thread.c — the floor of thread-per-connection: accept, start a
 * detached pthread that serves the connection with blocking calls, accept
 * again. Not one of the floors: it shows what the threading model
 * itself costs (a context switch per request once threads outnumber cores). */
#include "c_common.h"

#include <pthread.h>
#include <stdint.h>

static int mode;

static void *serve(void *fd) {
  serve_connection((int)(intptr_t)fd, mode);
  return NULL;
}

int main(int argc, char **argv) {
  struct server_config c = parse_args(argc, argv);
  int listener = open_server(&c);
  mode = c.mode;
  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&detached, 64 * 1024);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    pthread_t thread;
    if (pthread_create(&thread, &detached, serve, (void *)(intptr_t)fd) != 0) close(fd);
  }
}
