// SPDX-License-Identifier: BSL-1.0
// glibc_fortify_shim.cpp — Debian builds libbearssl.a with _FORTIFY_SOURCE,
// so the archive calls glibc's checked copies (__memcpy_chk and two more),
// which musl does not have. Linking that archive statically against musl
// (tls_echo on the *-linux-musl targets, static-musl.inc) needs these
// three: each checks the size and forwards. musl has __stack_chk_fail and
// __stack_chk_guard itself.
#include <cstddef>
#include <cstdlib>
#include <cstring>

extern "C" {
void* __memcpy_chk(void* to, const void* from, std::size_t size, std::size_t room) {
  if (size > room) std::abort();
  return std::memcpy(to, from, size);
}
void* __memmove_chk(void* to, const void* from, std::size_t size, std::size_t room) {
  if (size > room) std::abort();
  return std::memmove(to, from, size);
}
void* __memset_chk(void* to, int byte, std::size_t size, std::size_t room) {
  if (size > room) std::abort();
  return std::memset(to, byte, size);
}
}
