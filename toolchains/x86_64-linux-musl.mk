# x86_64-linux-musl: static, stripped x86_64 binaries against musl libc,
# built with the host g++ (recipe: static-musl.inc):
#   make TOOLCHAIN=x86_64-linux-musl examples      -> build/x86_64-linux-musl/examples/
TOOLCHAIN_PACKAGES := g++ musl-dev libbearssl-dev
CXX                := g++
musl_triple        := x86_64-linux-musl
# Debian's directory for this architecture (BearSSL's libbearssl.a, for TLS).
gnu_triple         := x86_64-linux-gnu
TOOLCHAIN_RUN      :=
# make size fails when tcp_uppercase (static, stripped) is over this.
SIZE_BUDGET        := 24576
include $(dir $(lastword $(MAKEFILE_LIST)))static-musl.inc
