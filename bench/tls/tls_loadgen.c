/* bench/tls/tls_loadgen.c — a TLS load generator on BearSSL's client.
 *
 *   tls_loadgen handshake|resume|echo PORT CLIENTS SECONDS SERVER_CERT.pem
 *
 * handshake: each client thread loops: connect, full handshake, one 64-byte
 *            line and its echo, close_notify both ways, close.
 * resume:    the same, resuming the thread's previous session.
 * echo:      each client keeps one connection and loops: 64-byte line, echo.
 * Prints "OPS ops in SECONDS s: RATE/s". The server's key is trusted
 * directly (br_x509_knownkey), so the client spends no time on chain
 * validation: the measurement is of the server, as far as a 2-core machine
 * allows. */
#define _GNU_SOURCE
#include <bearssl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int mode, port;
static atomic_long ops;
static atomic_int stop;
static br_x509_pkey server_key;
static unsigned char key_copy[160];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int sock_read(void *ctx, unsigned char *buf, size_t len) {
  ssize_t n;
  do n = recv(*(int *)ctx, buf, len, 0); while (n < 0 && errno == EINTR);
  return n > 0 ? (int)n : -1;
}
static int sock_write(void *ctx, const unsigned char *buf, size_t len) {
  ssize_t n;
  do n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  return n > 0 ? (int)n : -1;
}

static int connect_loopback(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
  return fd;
}

static const char line[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"; /* 64 bytes */

static int exchange(br_sslio_context *io) {
  char reply[64];
  if (br_sslio_write_all(io, line, 64) < 0 || br_sslio_flush(io) < 0) return -1;
  return br_sslio_read_all(io, reply, 64);
}

static void *client(void *unused) {
  (void)unused;
  br_ssl_client_context *cc = malloc(sizeof *cc);
  br_x509_knownkey_context *xc = malloc(sizeof *xc);
  unsigned char *iobuf = malloc(BR_SSL_BUFSIZE_BIDI);
  br_ssl_session_parameters saved;
  int have_session = 0;
  br_x509_minimal_context *unused_minimal = malloc(sizeof *unused_minimal);
  br_ssl_client_init_full(cc, unused_minimal, NULL, 0);  /* suites and algorithms; knownkey replaces it */
  if (server_key.key_type == BR_KEYTYPE_EC)
    br_x509_knownkey_init_ec(xc, &server_key.key.ec, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
  else
    br_x509_knownkey_init_rsa(xc, &server_key.key.rsa, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
  br_ssl_engine_set_x509(&cc->eng, &xc->vtable);
  br_ssl_engine_set_buffer(&cc->eng, iobuf, BR_SSL_BUFSIZE_BIDI, 1);
  while (!atomic_load(&stop)) {
    int fd = connect_loopback();
    if (fd < 0) continue;
    if (mode == 1 && have_session) br_ssl_engine_set_session_parameters(&cc->eng, &saved);
    br_ssl_client_reset(cc, "localhost", mode == 1 && have_session);
    br_sslio_context io;
    br_sslio_init(&io, &cc->eng, sock_read, &fd, sock_write, &fd);
    if (mode == 2) {
      while (!atomic_load(&stop) && exchange(&io) == 0) atomic_fetch_add(&ops, 1);
    } else if (exchange(&io) == 0) {
      br_sslio_close(&io);
      if (br_ssl_engine_last_error(&cc->eng) == BR_ERR_OK) atomic_fetch_add(&ops, 1);
      br_ssl_engine_get_session_parameters(&cc->eng, &saved);
      have_session = 1;
    } else {
      fprintf(stderr, "tls_loadgen: handshake or echo failed: BearSSL error %d\n", br_ssl_engine_last_error(&cc->eng));
    }
    close(fd);
  }
  return NULL;
}

static void dn_ignore(void *ctx, const void *buf, size_t len) { (void)ctx; (void)buf; (void)len; }
static void to_x509(void *ctx, const void *buf, size_t len) { br_x509_decoder_push(ctx, buf, len); }

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: tls_loadgen handshake|resume|echo PORT CLIENTS SECONDS CERT.pem\n"); return 2; }
  mode = strcmp(argv[1], "handshake") == 0 ? 0 : strcmp(argv[1], "resume") == 0 ? 1 : 2;
  port = atoi(argv[2]);
  int clients = atoi(argv[3]);
  double seconds = atof(argv[4]);
  /* The server's public key, from its certificate. */
  FILE *f = fopen(argv[5], "rb");
  if (!f) { perror(argv[5]); return 1; }
  static char text[16384];
  size_t n = fread(text, 1, sizeof text, f), off = 0;
  fclose(f);
  br_pem_decoder_context pc;
  br_x509_decoder_context xd;
  br_pem_decoder_init(&pc);
  int done = 0;
  while (off < n && !done) {
    off += br_pem_decoder_push(&pc, text + off, n - off);
    int ev = br_pem_decoder_event(&pc);
    if (ev == BR_PEM_BEGIN_OBJ) { br_x509_decoder_init(&xd, dn_ignore, NULL); br_pem_decoder_setdest(&pc, to_x509, &xd); }
    if (ev == BR_PEM_END_OBJ) done = 1;
  }
  br_x509_pkey *pk = br_x509_decoder_get_pkey(&xd);
  if (!done || pk == NULL) { fprintf(stderr, "no certificate in %s\n", argv[5]); return 1; }
  server_key = *pk;
  if (pk->key_type == BR_KEYTYPE_EC) {
    memcpy(key_copy, pk->key.ec.q, pk->key.ec.qlen);
    server_key.key.ec.q = key_copy;
  } else {
    fprintf(stderr, "EC server keys only\n");
    return 1;
  }
  pthread_t *threads = calloc((size_t)clients, sizeof *threads);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  double start = now();
  for (int i = 0; i < clients; ++i) pthread_create(&threads[i], &attr, client, NULL);
  struct timespec wait = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&wait, NULL);
  long counted = atomic_load(&ops);
  double elapsed = now() - start;
  atomic_store(&stop, 1);
  for (int i = 0; i < clients; ++i) pthread_join(threads[i], NULL);
  printf("%ld ops in %.2f s: %.1f/s\n", counted, elapsed, (double)counted / elapsed);
  return 0;
}
