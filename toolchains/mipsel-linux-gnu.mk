# mipsel-linux-gnu: 32-bit MIPS, little-endian.
# Routers (OpenWrt's ramips): 32-bit pointers, strict alignment.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/mipsel-linux-gnu) as the sysroot:
#   make TOOLCHAIN=mipsel-linux-gnu test
TOOLCHAIN_PACKAGES := g++-mipsel-linux-gnu qemu-user
CXX                := mipsel-linux-gnu-g++
# -E LD_LIBRARY_PATH: the cross glibc's own libraries even when Debian's multiarch
# libc6:ARCH is installed too (the loader would take that libc, another build, and crash).
TOOLCHAIN_RUN      := qemu-mipsel -L /usr/mipsel-linux-gnu -E LD_LIBRARY_PATH=/usr/mipsel-linux-gnu/lib
# No 64-bit atomic instructions on 32-bit MIPS: std::atomic<long long> and
# std::atomic<double> (some tests use them; the library does not) call libatomic.
TOOLCHAIN_LDFLAGS  := -latomic
