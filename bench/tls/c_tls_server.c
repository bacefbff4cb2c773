/* bench/tls/c_tls_server.c — the floor for sockserv's TLS transport: a
 * hand-written BearSSL echo server in C, as one would write it for a device.
 *
 *   c_tls_server PORT CHAIN.pem KEY.pem [THREADS]
 *
 * THREADS (default 16, as threading<>) threads each own one server context
 * and record buffer (full duplex, BR_SSL_BUFSIZE_BIDI, as sockserv's
 * default), configured once and reset per connection; each accepts on the
 * shared listener, handshakes and echoes with br_sslio, BearSSL's blocking
 * helper. One LRU session cache behind a mutex. Prints "listening on
 * 127.0.0.1:PORT". PEM is decoded with BearSSL's own decoders, as sockserv
 * does; the key must be EC (P-256). */
#define _GNU_SOURCE
#include <bearssl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static br_x509_certificate chain[4];
static size_t chain_len;
static unsigned char chain_bytes[8192], key_bytes[128];
static size_t chain_used;
static br_ec_private_key key;
static unsigned issuer_type;
static int listener;
static br_ssl_session_cache_lru lru;
static unsigned char cache_store[64 * 100];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void append(void *ctx, const void *data, size_t len) {
  (void)ctx;
  if (chain_used + len <= sizeof chain_bytes) memcpy(chain_bytes + chain_used, data, len);
  chain_used += len;
}
static void to_skey(void *ctx, const void *data, size_t len) { br_skey_decoder_push(ctx, data, len); }

static void load_pem(const char *path, int is_key, br_skey_decoder_context *kd) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  static char text[16384];
  size_t n = fread(text, 1, sizeof text, f), off = 0;
  fclose(f);
  br_pem_decoder_context pc;
  br_pem_decoder_init(&pc);
  size_t start = 0;
  int inside = 0;
  while (off < n) {
    off += br_pem_decoder_push(&pc, text + off, n - off);
    switch (br_pem_decoder_event(&pc)) {
      case BR_PEM_BEGIN_OBJ:
        inside = is_key ? strstr(br_pem_decoder_name(&pc), "PRIVATE KEY") != NULL
                        : strcmp(br_pem_decoder_name(&pc), "CERTIFICATE") == 0;
        if (inside && is_key) br_skey_decoder_init(kd);
        if (inside) br_pem_decoder_setdest(&pc, is_key ? to_skey : append, kd);
        else br_pem_decoder_setdest(&pc, NULL, NULL);
        start = chain_used;
        break;
      case BR_PEM_END_OBJ:
        if (inside && !is_key) {
          chain[chain_len].data = chain_bytes + start;
          chain[chain_len++].data_len = chain_used - start;
        }
        break;
      case BR_PEM_ERROR: fprintf(stderr, "%s: bad PEM\n", path); exit(1);
    }
  }
}

static void cache_save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                       const br_ssl_session_parameters *p) {
  (void)ctx;
  pthread_mutex_lock(&cache_lock);
  lru.vtable->save(&lru.vtable, sc, p);
  pthread_mutex_unlock(&cache_lock);
}
static int cache_load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc, br_ssl_session_parameters *p) {
  (void)ctx;
  pthread_mutex_lock(&cache_lock);
  int r = lru.vtable->load(&lru.vtable, sc, p);
  pthread_mutex_unlock(&cache_lock);
  return r;
}
static const br_ssl_session_cache_class locked_cache = {sizeof(void *), cache_save, cache_load};
static const br_ssl_session_cache_class *locked_cache_vtable = &locked_cache;

static int sock_read(void *ctx, unsigned char *buf, size_t len) {
  for (;;) {
    ssize_t n = recv(*(int *)ctx, buf, len, 0);
    if (n > 0) return (int)n;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
}
static int sock_write(void *ctx, const unsigned char *buf, size_t len) {
  for (;;) {
    ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
    if (n > 0) return (int)n;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
}

static void *worker(void *unused) {
  (void)unused;
  static __thread br_ssl_server_context sc;
  static __thread unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
  br_ssl_server_init_full_ec(&sc, chain, chain_len, issuer_type, &key);
  br_ssl_engine_set_buffer(&sc.eng, iobuf, sizeof iobuf, 1);
  br_ssl_engine_add_flags(&sc.eng, BR_OPT_NO_RENEGOTIATION);
  br_ssl_server_set_cache(&sc, &locked_cache_vtable);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    br_ssl_server_reset(&sc);
    br_sslio_context io;
    br_sslio_init(&io, &sc.eng, sock_read, &fd, sock_write, &fd);
    unsigned char line[8192];
    for (;;) {
      int n = br_sslio_read(&io, line, sizeof line);
      if (n <= 0) break;
      if (br_sslio_write_all(&io, line, (size_t)n) < 0 || br_sslio_flush(&io) < 0) break;
    }
    if (br_ssl_engine_last_error(&sc.eng) == BR_ERR_OK) br_sslio_close(&io);
    shutdown(fd, SHUT_WR);
    close(fd);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: c_tls_server PORT CHAIN.pem KEY.pem [THREADS]\n"); return 2; }
  int threads = argc > 4 ? atoi(argv[4]) : 16;
  load_pem(argv[2], 0, NULL);
  br_skey_decoder_context kd;
  load_pem(argv[3], 1, &kd);
  const br_ec_private_key *k = br_skey_decoder_get_ec(&kd);
  if (br_skey_decoder_last_error(&kd) != 0 || k == NULL) { fprintf(stderr, "EC key wanted\n"); return 1; }
  memcpy(key_bytes, k->x, k->xlen);
  key.curve = k->curve; key.x = key_bytes; key.xlen = k->xlen;
  br_x509_decoder_context xd;
  br_x509_decoder_init(&xd, NULL, NULL);
  br_x509_decoder_push(&xd, chain[0].data, chain[0].data_len);
  issuer_type = (unsigned)br_x509_decoder_get_signer_key_type(&xd);
  br_ssl_session_cache_lru_init(&lru, cache_store, sizeof cache_store);

  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, SOMAXCONN)) { perror("bind"); return 1; }
  socklen_t len = sizeof a;
  getsockname(listener, (struct sockaddr *)&a, &len);
  printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
  fflush(stdout);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (int i = 0; i < threads; ++i) {
    pthread_t t;
    pthread_create(&t, &attr, worker, NULL);
  }
  pause();
  return 0;
}
