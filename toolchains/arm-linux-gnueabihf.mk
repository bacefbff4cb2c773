# arm-linux-gnueabihf: 32-bit ARMv7, hard-float, little-endian.
# The usual embedded Linux SoC (Cortex-A7/A9), 32-bit pointers.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/arm-linux-gnueabihf) as the sysroot:
#   make TOOLCHAIN=arm-linux-gnueabihf test
TOOLCHAIN_PACKAGES := g++-arm-linux-gnueabihf qemu-user
CXX                := arm-linux-gnueabihf-g++
TOOLCHAIN_RUN      := qemu-arm -L /usr/arm-linux-gnueabihf
