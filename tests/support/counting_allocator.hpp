// A counting global allocator for the allocation tests: malloc, calloc,
// realloc, free, the aligned forms and every operator new/delete forward to
// glibc and are counted while a counting_window is open. Include it in
// exactly one file of a test binary: it replaces the allocator of the
// whole binary (so that binary is linked on its own). Under AddressSanitizer
// or ThreadSanitizer, whose runtimes own the allocator, the count comes
// from the sanitizer's malloc/free hooks instead (operator new reaches
// them through malloc).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SOCKSERV_TEST_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SOCKSERV_TEST_SANITIZER_ALLOCATOR 1
#endif
#endif

namespace {

std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
std::atomic<long> releases{0};

inline void note_allocation() noexcept {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
inline void note_release(const void* pointer) noexcept {
  if (pointer != nullptr && counting.load(std::memory_order_relaxed))
    releases.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

#ifdef SOCKSERV_TEST_SANITIZER_ALLOCATOR

extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_sanitizer_malloc(const volatile void*, std::size_t) { note_allocation(); }
void on_sanitizer_free(const volatile void* pointer) { note_release(const_cast<const void*>(pointer)); }
const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_sanitizer_malloc, on_sanitizer_free);
}  // namespace

#else  // replace the allocator

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t size) {
  note_allocation();
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
  note_allocation();
  return __libc_calloc(count, size);
}
void* realloc(void* pointer, std::size_t size) {
  note_allocation();
  return __libc_realloc(pointer, size);
}
void free(void* pointer) {
  note_release(pointer);
  __libc_free(pointer);
}
void* memalign(std::size_t alignment, std::size_t size) {
  note_allocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  note_allocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  note_allocation();
  void* pointer = __libc_memalign(alignment, size);
  if (pointer == nullptr) return ENOMEM;
  *out = pointer;
  return 0;
}
}  // extern "C"

namespace {
void* allocate(std::size_t size) {
  note_allocation();
  return __libc_malloc(size == 0 ? 1 : size);
}
void* allocate_aligned(std::size_t size, std::align_val_t alignment) {
  note_allocation();
  return __libc_memalign(static_cast<std::size_t>(alignment), size == 0 ? 1 : size);
}
void release(void* pointer) noexcept {
  note_release(pointer);
  __libc_free(pointer);
}
void* or_throw(void* pointer) {
  if (pointer == nullptr) throw std::bad_alloc();
  return pointer;
}
}  // namespace

void* operator new(std::size_t size) { return or_throw(allocate(size)); }
void* operator new[](std::size_t size) { return or_throw(allocate(size)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new(std::size_t size, std::align_val_t alignment) { return or_throw(allocate_aligned(size, alignment)); }
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return or_throw(allocate_aligned(size, alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate_aligned(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate_aligned(size, alignment);
}
void operator delete(void* pointer) noexcept { release(pointer); }
void operator delete[](void* pointer) noexcept { release(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { release(pointer); }
void operator delete[](void* pointer, std::size_t) noexcept { release(pointer); }
void operator delete(void* pointer, const std::nothrow_t&) noexcept { release(pointer); }
void operator delete[](void* pointer, const std::nothrow_t&) noexcept { release(pointer); }
void operator delete(void* pointer, std::align_val_t) noexcept { release(pointer); }
void operator delete[](void* pointer, std::align_val_t) noexcept { release(pointer); }
void operator delete(void* pointer, std::size_t, std::align_val_t) noexcept { release(pointer); }
void operator delete[](void* pointer, std::size_t, std::align_val_t) noexcept { release(pointer); }
void operator delete(void* pointer, std::align_val_t, const std::nothrow_t&) noexcept { release(pointer); }
void operator delete[](void* pointer, std::align_val_t, const std::nothrow_t&) noexcept { release(pointer); }

#endif  // SOCKSERV_TEST_SANITIZER_ALLOCATOR

namespace {

struct window_counts {
  long allocations = 0;
  long releases = 0;
};

// Counts from construction until stop().
class counting_window {
 public:
  counting_window() {
    allocations = 0;
    releases = 0;
    counting = true;
  }
  ~counting_window() { counting = false; }
  window_counts stop() {
    counting = false;
    return {allocations.load(), releases.load()};
  }
};

}  // namespace
