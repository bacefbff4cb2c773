/* bench/ref/c_fork.c — the floor of fork-per-connection: accept, fork, the
 * child serves and exits, the parent closes its copy. SIGCHLD is ignored so
 * the kernel reaps the children (no waitpid at all: the cheapest there is). */
#include "c_common.h"

#include <signal.h>

int main(int argc, char **argv) {
  struct server_config c = parse_args(argc, argv);
  int listener = open_server(&c);
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      close(listener);
      serve_connection(fd, c.mode);
      _exit(0);
    }
    close(fd);
  }
}
