# mipsel-linux-gnu: 32-bit MIPS, little-endian.
# Routers (OpenWrt's ramips): 32-bit pointers, strict alignment.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/mipsel-linux-gnu) as the sysroot:
#   make TOOLCHAIN=mipsel-linux-gnu test
TOOLCHAIN_PACKAGES := g++-mipsel-linux-gnu qemu-user
CXX                := mipsel-linux-gnu-g++
# LD_LIBRARY_PATH: where Debian's multiarch libc for this architecture is
# installed too (libc6:armhf comes with e.g. libbearssl-dev:armhf), the
# emulated loader would find /lib/mipsel-linux-gnu/libc.so.6 first, and a program
# built against the cross glibc crashes at its first thread or fork.
TOOLCHAIN_RUN      := qemu-mipsel -L /usr/mipsel-linux-gnu -E LD_LIBRARY_PATH=/usr/mipsel-linux-gnu/lib
# No 64-bit atomic instructions on 32-bit MIPS: std::atomic<long long> and
# std::atomic<double> (some tests use them; the library does not) call libatomic.
TOOLCHAIN_LDFLAGS  := -latomic
