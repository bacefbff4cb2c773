#!/bin/sh
# run_examples.sh TOOLCHAIN — the static examples of a *-linux-musl target,
# run under its emulator (qemu-mipsel, ...) on loopback: each seed server
# (tcp_uppercase, tcp_uppercase_stream, udp_uppercase) is started under
# qemu and answered the seed's native clients, and threaded_tcp and
# forking_tcp run whole; examples/demo.sh checks every output against the
# seed's. Builds what it needs (make TOOLCHAIN=... examples, and the native
# clients). Exit 0: every output matched.
set -eu
toolchain=${1:?usage: run_examples.sh TOOLCHAIN (a *-linux-musl target)}
cd "$(dirname "$0")/../.."

make -s --no-print-directory TOOLCHAIN="$toolchain" examples
make -s --no-print-directory TOOLCHAIN= build/examples/tcp_client build/examples/udp_client
run=$(make -s --no-print-directory -f toolchains/flags.mk TOOLCHAIN="$toolchain" print-flags | sed -n "s/^RUN='\(.*\)'$/\1/p")
echo "servers: build/$toolchain/examples, run with '${run:-(native)}'; clients: build/examples"
# Emulated start-up is slower; the demo's limits are per step.
BUILD=build SERVERS="build/$toolchain/examples" RUN="$run" DEMO_TIMEOUT=30 examples/demo.sh
