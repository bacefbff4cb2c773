# mipsel-linux-musl: static, stripped 32-bit MIPS little-endian binaries
# against musl (OpenWrt's ramips/mt7621 routers). Debian's cross g++ with
# multiarch musl-dev:mipsel (dpkg --add-architecture mipsel first); the
# examples run under qemu-mipsel (recipe: static-musl.inc):
#   make TOOLCHAIN=mipsel-linux-musl examples      -> build/mipsel-linux-musl/examples/
# Big-endian MIPS has no musl-dev in Debian: use mips-linux-gnu (glibc) there.
TOOLCHAIN_PACKAGES := g++-mipsel-linux-gnu musl-dev:mipsel libbearssl-dev:mipsel qemu-user
CXX                := mipsel-linux-gnu-g++
musl_triple        := mipsel-linux-musl
# Debian's directory for this architecture (BearSSL's libbearssl.a, for TLS).
gnu_triple         := mipsel-linux-gnu
TOOLCHAIN_RUN      := qemu-mipsel
# make size fails when tcp_uppercase (static, stripped) is over this.
SIZE_BUDGET        := 32768
include $(dir $(lastword $(MAKEFILE_LIST)))static-musl.inc
# Static executables only: -mno-shared -mplt compile non-PIC code that still
# links with musl's PIC libc.a (1.7 KiB less of tcp_uppercase's 31.7 KiB).
TOOLCHAIN_CXXFLAGS += -mno-shared -mplt
