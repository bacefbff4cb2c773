# aarch64-linux-musl: static, stripped 64-bit ARMv8 binaries against musl.
# Debian's cross g++ with multiarch musl-dev:arm64 (dpkg --add-architecture
# arm64 first); the examples run under qemu-aarch64 (recipe: static-musl.inc):
#   make TOOLCHAIN=aarch64-linux-musl examples     -> build/aarch64-linux-musl/examples/
TOOLCHAIN_PACKAGES := g++-aarch64-linux-gnu musl-dev:arm64 libbearssl-dev:arm64 qemu-user
CXX                := aarch64-linux-gnu-g++
musl_triple        := aarch64-linux-musl
# Debian's directory for this architecture (BearSSL's libbearssl.a, for TLS).
gnu_triple         := aarch64-linux-gnu
TOOLCHAIN_RUN      := qemu-aarch64
# make size fails when tcp_uppercase (static, stripped) is over this.
SIZE_BUDGET        := 24576
include $(dir $(lastword $(MAKEFILE_LIST)))static-musl.inc
