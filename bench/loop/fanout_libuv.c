/* bench/loop/fanout_libuv.c — the broadcast server on libuv, written the
 * way libuv's users write one: a list of uv_tcp_t clients; uv_read_start
 * with an allocation callback; the complete lines of each read go to every
 * other client, first with uv_try_write (no allocation when the socket
 * takes it all, the usual fast path) and otherwise with uv_write of a
 * heap copy, freed in the write callback (libuv's write queue is unbounded,
 * so nothing is ever dropped here). */
#include "fanout_common.h"

#include <uv.h>

#define IN_BUF 2048

struct client {
  uv_tcp_t handle;
  struct client *next, *previous;
  size_t have;
  char in[IN_BUF];
};

struct pending_write {
  uv_write_t request;
  char bytes[];
};

static struct client *clients;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void remove_client(struct client *c) {
  if (c->previous) c->previous->next = c->next; else clients = c->next;
  if (c->next) c->next->previous = c->previous;
  uv_close((uv_handle_t *)&c->handle, on_closed);
}

static void on_written(uv_write_t *request, int status) {
  (void)status;
  free(request);
}

static void deliver(struct client *to, const char *p, size_t n) {
  uv_buf_t buf = uv_buf_init((char *)p, (unsigned)n);
  int w = uv_try_write((uv_stream_t *)&to->handle, &buf, 1);
  if (w == (int)n) return;
  if (w < 0 && w != UV_EAGAIN) return; /* the connection broke: its read callback closes it */
  if (w < 0) w = 0;
  size_t rest = n - (size_t)w;
  struct pending_write *pw = malloc(sizeof *pw + rest);
  memcpy(pw->bytes, p + w, rest);
  buf = uv_buf_init(pw->bytes, (unsigned)rest);
  uv_write(&pw->request, (uv_stream_t *)&to->handle, &buf, 1, on_written);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct client *c = h->data;
  *buf = uv_buf_init(c->in + c->have, (unsigned)(IN_BUF - c->have));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  struct client *c = s->data;
  if (n < 0) { remove_client(c); return; }
  c->have += (size_t)n;
  char *end = memrchr(c->in, '\n', c->have);
  size_t lines = end ? (size_t)(end - c->in) + 1 : (c->have == IN_BUF ? IN_BUF : 0);
  if (lines == 0) return;
  for (struct client *to = clients; to; to = to->next)
    if (to != c) deliver(to, c->in, lines);
  memmove(c->in, c->in + lines, c->have - lines);
  c->have -= lines;
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  struct client *c = calloc(1, sizeof *c);
  uv_tcp_init(server->loop, &c->handle);
  c->handle.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->handle) != 0) {
    uv_close((uv_handle_t *)&c->handle, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->handle, 1);
  c->next = clients;
  if (clients) clients->previous = c;
  clients = c;
  uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
}

int main(int argc, char **argv) {
  int fd = fanout_listen(argc, argv);
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  if (uv_tcp_open(&server, fd) != 0 || uv_listen((uv_stream_t *)&server, 1024, on_connection) != 0) {
    fprintf(stderr, "fanout_libuv: cannot listen\n");
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
