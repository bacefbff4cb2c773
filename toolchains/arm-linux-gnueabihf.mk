# arm-linux-gnueabihf: 32-bit ARMv7, hard-float, little-endian.
# The usual embedded Linux SoC (Cortex-A7/A9), 32-bit pointers.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/arm-linux-gnueabihf) as the sysroot:
#   make TOOLCHAIN=arm-linux-gnueabihf test
TOOLCHAIN_PACKAGES := g++-arm-linux-gnueabihf qemu-user
CXX                := arm-linux-gnueabihf-g++
# LD_LIBRARY_PATH: where Debian's multiarch libc for this architecture is
# installed too (libc6:armhf comes with e.g. libbearssl-dev:armhf), the
# emulated loader would find /lib/arm-linux-gnueabihf/libc.so.6 first, and a program
# built against the cross glibc crashes at its first thread or fork.
TOOLCHAIN_RUN      := qemu-arm -L /usr/arm-linux-gnueabihf -E LD_LIBRARY_PATH=/usr/arm-linux-gnueabihf/lib
