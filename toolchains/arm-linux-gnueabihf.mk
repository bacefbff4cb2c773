# arm-linux-gnueabihf: 32-bit ARMv7, hard-float, little-endian.
# The usual embedded Linux SoC (Cortex-A7/A9), 32-bit pointers.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/arm-linux-gnueabihf) as the sysroot:
#   make TOOLCHAIN=arm-linux-gnueabihf test
TOOLCHAIN_PACKAGES := g++-arm-linux-gnueabihf qemu-user
CXX                := arm-linux-gnueabihf-g++
# -E LD_LIBRARY_PATH: the cross glibc's own libraries even when Debian's multiarch
# libc6:ARCH is installed too (the loader would take that libc, another build, and crash).
TOOLCHAIN_RUN      := qemu-arm -L /usr/arm-linux-gnueabihf -E LD_LIBRARY_PATH=/usr/arm-linux-gnueabihf/lib
