# aarch64-linux-gnu: 64-bit ARMv8, little-endian.
# 64-bit pointers with a different ABI from x86_64 (char is unsigned).
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/aarch64-linux-gnu) as the sysroot:
#   make TOOLCHAIN=aarch64-linux-gnu test
TOOLCHAIN_PACKAGES := g++-aarch64-linux-gnu qemu-user
CXX                := aarch64-linux-gnu-g++
# -E LD_LIBRARY_PATH: the cross glibc's own libraries even when Debian's multiarch
# libc6:ARCH is installed too (the loader would take that libc, another build, and crash).
TOOLCHAIN_RUN      := qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib
