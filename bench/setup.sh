#!/bin/sh
# bench/setup.sh — installs the benchmark's dev-only Debian packages, only
# those that are missing (run by `make bench`; needs root or sudo when
# something is missing). Nothing here is needed to build or use sockserv.
#   g++ make         the library's examples, the load generator, the C floors
#   libasio-dev      standalone Asio, the reference event-driven server
#   libuv1-dev       libuv, a reference of the loop benchmarks (bench/loop)
#   musl-dev musl-tools  static musl builds for the binary-size table (musl-gcc)
#   python3          the orchestration and the CPython socketserver servers
#   util-linux       taskset (pins server and load generator to one core each)
set -eu
wanted="g++ gcc make libasio-dev libuv1-dev musl-dev musl-tools python3 util-linux"
missing=""
for package in $wanted; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $package"
done
[ -z "$missing" ] && exit 0
echo "bench/setup.sh: installing$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "bench/setup.sh: need root or sudo to install:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
