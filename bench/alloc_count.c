/* bench/alloc_count.c — LD_PRELOAD library that counts heap allocations.
 *
 *   ALLOC_COUNT_FILE=/tmp/count LD_PRELOAD=build/bench/alloc_count.so server ...
 *
 * Every malloc, calloc, realloc, memalign, posix_memalign, aligned_alloc
 * and valloc adds one to a 64-bit counter kept in ALLOC_COUNT_FILE, which is
 * mapped shared: threads and forked children all count into it, and the
 * benchmark reads it whenever it likes (8 bytes, native order) — before and
 * after a steady-state window, so start-up allocations drop out. operator
 * new is counted through the malloc it calls. The real allocator is glibc's
 * own __libc_* entry points, so no dlsym (which itself allocates) is needed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static uint64_t early;            /* counted before the file is mapped */
static uint64_t *counter = &early;

static void count(void) { __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

__attribute__((constructor)) static void map_counter(void) {
  const char *path = getenv("ALLOC_COUNT_FILE");
  if (!path) return;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (ftruncate(fd, 4096) == 0) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      __atomic_fetch_add((uint64_t *)p, early, __ATOMIC_RELAXED);
      counter = (uint64_t *)p;
    }
  }
  close(fd);
}

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t m, size_t n) { count(); return __libc_calloc(m, n); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *valloc(size_t n) { count(); return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n); }
int posix_memalign(void **out, size_t a, size_t n) {
  count();
  void *p = __libc_memalign(a, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}
