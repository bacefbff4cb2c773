# arm-linux-musleabihf: static, stripped 32-bit ARMv7 hard-float binaries
# against musl. Debian's cross g++ with multiarch musl-dev:armhf
# (dpkg --add-architecture armhf first); the examples run under qemu-arm
# (recipe: static-musl.inc):
#   make TOOLCHAIN=arm-linux-musleabihf examples   -> build/arm-linux-musleabihf/examples/
TOOLCHAIN_PACKAGES := g++-arm-linux-gnueabihf musl-dev:armhf libbearssl-dev:armhf qemu-user
CXX                := arm-linux-gnueabihf-g++
musl_triple        := arm-linux-musleabihf
# Debian's directory for this architecture (BearSSL's libbearssl.a, for TLS).
gnu_triple         := arm-linux-gnueabihf
TOOLCHAIN_RUN      := qemu-arm
# make size fails when tcp_uppercase (static, stripped) is over this.
SIZE_BUDGET        := 24576
include $(dir $(lastword $(MAKEFILE_LIST)))static-musl.inc
