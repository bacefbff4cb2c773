/* bench/tls/glibc_fortify_shim.c — Debian builds libbearssl.a with
 * _FORTIFY_SOURCE, so it calls glibc's checked copies (__memcpy_chk and
 * friends), which musl lacks. Linking that archive statically against musl
 * (the size measurement) needs these three; they check and forward. musl
 * provides __stack_chk_fail itself. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *__memcpy_chk(void *d, const void *s, size_t n, size_t room) {
  if (n > room) abort();
  return memcpy(d, s, n);
}
void *__memmove_chk(void *d, const void *s, size_t n, size_t room) {
  if (n > room) abort();
  return memmove(d, s, n);
}
void *__memset_chk(void *d, int c, size_t n, size_t room) {
  if (n > room) abort();
  return memset(d, c, n);
}
