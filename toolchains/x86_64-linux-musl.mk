# x86_64-linux-musl: static, stripped x86_64 binaries against musl libc.
# The host g++ with Debian's musl-dev headers, crt objects and libc.a:
#   make TOOLCHAIN=x86_64-linux-musl examples      -> build/x86_64-linux-musl/examples/
#
# Debian has no musl build of libstdc++, so only header-only C++ links:
# no exceptions, no RTTI, no thread-safe static guards, nothing from
# libstdc++.so. sockserv needs none of that, so the examples build; the
# Catch2 suite does, so tests stay on glibc (make test, or a cross target).
TOOLCHAIN_PACKAGES := g++ musl-dev
TOOLCHAIN_TESTS    := no
CXX                := g++

musl_lib     := /usr/lib/x86_64-linux-musl
musl_include := /usr/include/x86_64-linux-musl
gcc_version  := $(shell $(CXX) -dumpversion)
gcc_triple   := $(shell $(CXX) -dumpmachine)

OPTIMIZE := -Os
# libstdc++'s headers, then musl's C headers (instead of glibc's), then gcc's
# own. libstdc++ tests __GLIBC_PREREQ, which musl does not define.
TOOLCHAIN_CXXFLAGS := -nostdinc \
  -isystem /usr/include/c++/$(gcc_version) \
  -isystem /usr/include/$(gcc_triple)/c++/$(gcc_version) \
  -isystem $(musl_include) \
  -isystem $(shell $(CXX) -print-file-name=include) \
  '-D__GLIBC_PREREQ(a,b)=0' \
  -fno-exceptions -fno-rtti -fno-threadsafe-statics \
  -fno-asynchronous-unwind-tables -fno-unwind-tables \
  -ffunction-sections -fdata-sections
# musl's start files (crt1 = static, non-PIE) around gcc's, libc.a and
# libgcc at the end. Link options, all for size:
#   --gc-sections          drop every unreferenced function and object;
#   -s                     strip symbols;
#   -z noseparate-code     no page of padding on each side of .text;
#   -z common-page-size=64 put .data right after .rodata in the file instead
#                          of at the next 4 KiB page (it still gets its own
#                          page in memory);
#   -z norelro             musl's static start-up never applies PT_GNU_RELRO
#                          (the page stays rw-, checked in /proc/PID/maps),
#                          so the segment would only be padding;
#   --build-id=none        no note section.
TOOLCHAIN_STARTFILES := $(musl_lib)/crt1.o $(musl_lib)/crti.o $(shell $(CXX) -print-file-name=crtbeginT.o)
TOOLCHAIN_LDFLAGS := -static -nostdlib -s -Wl,--gc-sections \
  -Wl,-z,noseparate-code -Wl,-z,common-page-size=64 -Wl,-z,norelro -Wl,--build-id=none \
  -Wl,--start-group $(musl_lib)/libc.a -lgcc -Wl,--end-group \
  $(shell $(CXX) -print-file-name=crtend.o) $(musl_lib)/crtn.o
