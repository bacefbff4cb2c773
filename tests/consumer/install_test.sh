#!/bin/sh
# install_test.sh PREFIX — builds tests/consumer/hello.cpp against an
# installed sockserv (make install PREFIX=...) both ways a user would:
#   1. pkg-config:  $CXX hello.cpp $(pkg-config --cflags --libs sockserv)
#   2. CMake:       find_package(sockserv) + target_link_libraries(sockserv::sockserv)
# and runs each. The sources are copied out of the repository first, so only
# the installed headers can be found. Exit 0: both built and ran right.
set -eu

prefix=${1:?usage: install_test.sh PREFIX}
prefix=$(cd "$prefix" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cxx=${CXX:-g++}

work=$(mktemp -d "${TMPDIR:-/tmp}/sockserv-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/hello.cpp" "$here/CMakeLists.txt" "$work/"

echo "-- pkg-config (PKG_CONFIG_PATH=$prefix/share/pkgconfig)"
flags=$(PKG_CONFIG_PATH="$prefix/share/pkgconfig" pkg-config --cflags --libs sockserv)
echo "   $cxx -std=c++17 hello.cpp $flags"
pthreads=$(printf '%s\n' $flags | grep -c '^-pthread$' || true)
[ "$pthreads" -eq 1 ] || { echo "FAIL: pkg-config --cflags --libs gives -pthread $pthreads times, not once"; exit 1; }
pc_version=$(PKG_CONFIG_PATH="$prefix/share/pkgconfig" pkg-config --modversion sockserv)
# shellcheck disable=SC2086
(cd "$work" && $cxx -std=c++17 -Wall -Wextra -Werror "-DEXPECTED_VERSION=\"$pc_version\"" hello.cpp $flags -o hello-pkgconfig)
"$work/hello-pkgconfig"

echo "-- CMake find_package(sockserv) (CMAKE_PREFIX_PATH=$prefix)"
cmake -S "$work" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/hello"

echo "install: ok (pkg-config and CMake against $prefix)"
