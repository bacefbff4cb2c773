# mips-linux-gnu: 32-bit MIPS, BIG-endian.
# The byte-order target: a missing htons/ntohs fails its tests here only.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/mips-linux-gnu) as the sysroot:
#   make TOOLCHAIN=mips-linux-gnu test
TOOLCHAIN_PACKAGES := g++-mips-linux-gnu qemu-user
CXX                := mips-linux-gnu-g++
# -E LD_LIBRARY_PATH: the cross glibc's own libraries even when Debian's multiarch
# libc6:ARCH is installed too (the loader would take that libc, another build, and crash).
TOOLCHAIN_RUN      := qemu-mips -L /usr/mips-linux-gnu -E LD_LIBRARY_PATH=/usr/mips-linux-gnu/lib
# No 64-bit atomic instructions on 32-bit MIPS: std::atomic<long long> and
# std::atomic<double> (some tests use them; the library does not) call libatomic.
TOOLCHAIN_LDFLAGS  := -latomic
