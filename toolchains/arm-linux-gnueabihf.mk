# arm-linux-gnueabihf: 32-bit ARMv7, hard-float, little-endian.
# The usual embedded Linux SoC (Cortex-A7/A9), 32-bit pointers.
# Cross-built with Debian's GNU toolchain; tests run under qemu-user with
# the cross glibc (/usr/arm-linux-gnueabihf) as the sysroot:
#   make TOOLCHAIN=arm-linux-gnueabihf test
TOOLCHAIN_PACKAGES := g++-arm-linux-gnueabihf qemu-user
CXX                := arm-linux-gnueabihf-g++
TOOLCHAIN_RUN      := qemu-arm -L /usr/arm-linux-gnueabihf
# Linked static: Debian 12's qemu-user (7.2) on newer kernels crashes a
# dynamically linked 32-bit ARM or little-endian MIPS program when it starts
# a thread or forks (SIGSEGV in the emulated dynamic loader's TLS set-up; a
# three-line std::thread program shows it). The static binary runs.
TOOLCHAIN_LDFLAGS  += -static
