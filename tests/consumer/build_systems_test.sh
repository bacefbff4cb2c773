#!/bin/sh
# build_systems_test.sh SCENARIO — builds tests/consumer/hello.cpp the way a
# user's own build would take sockserv, runs it, and ends with a Catch2-style
# summary line (tests/run_all.sh counts it). make test runs every scenario,
# each in parallel with the rest of the build. hello also checks that the
# version the build system reports is sockserv/version.hpp's.
#   cmake-subdirectory   add_subdirectory(sockserv) + sockserv::sockserv
#   cmake-fetchcontent   FetchContent from a tarball of the tree
#   cmake-toolchain      toolchains/cmake/{x86_64,mipsel}-linux-musl.cmake: static, run (qemu)
#   meson                a meson subproject: dependency('sockserv', fallback: ...)
#   flags-mk             eval "$(make -f toolchains/flags.mk TOOLCHAIN=... print-flags)", per musl target
#   flag-stamp           the project's build dir is rebuilt when its flags change
#   install              make install + pkg-config (-pthread once) + find_package (install_test.sh)
# Environment: CXX (default g++) for the native scenarios.
set -u
scenario=${1:?usage: build_systems_test.sh SCENARIO}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cxx=${CXX:-g++}
version=$(sed -n 's/^#define SOCKSERV_VERSION_STRING "\(.*\)"/\1/p' "$repo/include/sockserv/version.hpp")
work=$(mktemp -d "${TMPDIR:-/tmp}/sockserv-$scenario.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cp "$here/hello.cpp" "$work/"
checks=0 failures=0

# check NAME COMMAND...: runs COMMAND with its output in $work/log, shown on failure.
check() {
  name=$1
  shift
  checks=$((checks + 1))
  if "$@" >"$work/log" 2>&1; then
    echo "ok     $scenario: $name"
  else
    echo "FAILED $scenario: $name"
    sed 's/^/   | /' "$work/log" | tail -n 40
    failures=$((failures + 1))
  fi
}

# A CMake project for hello; $1: how it gets sockserv.
cmake_project() {
  mkdir -p "$work/project"
  cp "$work/hello.cpp" "$work/project/"
  {
    echo 'cmake_minimum_required(VERSION 3.14)'
    echo 'project(consumer CXX)'
    printf '%s\n' "$1"
    echo 'if(NOT sockserv_VERSION VERSION_GREATER_EQUAL 0.1)'
    echo '  message(FATAL_ERROR "sockserv_VERSION is \"${sockserv_VERSION}\"")'
    echo 'endif()'
    echo 'add_executable(hello hello.cpp)'
    echo 'target_link_libraries(hello PRIVATE sockserv::sockserv)'
    echo 'target_compile_definitions(hello PRIVATE "EXPECTED_VERSION=\"${sockserv_VERSION}\"")'
    echo 'target_compile_options(hello PRIVATE -Wall -Wextra -Werror)'
  } >"$work/project/CMakeLists.txt"
}

# cmake_build DIR [ARGS...] then runs DIR/hello (through RUN, if set).
cmake_build_and_run() {
  dir=$1
  shift
  cmake -S "$work/project" -B "$dir" "$@" && cmake --build "$dir" && ${RUN:-} "$dir/hello"
}

is_static() { ! readelf -l "$1" | grep -q INTERP; }

# have_target TARGET: its compiler and musl are installed. When not, the
# target is skipped with a note, unless SOCKSERV_REQUIRE_ALL_TARGETS=1 (CI).
have_target() {
  if (eval "$(make -s -f "$repo/toolchains/flags.mk" TOOLCHAIN="$1" print-flags)" 2>/dev/null &&
      command -v "$CXX" && [ -f "/usr/lib/$1/libc.a" ] && { [ -z "$RUN" ] || command -v "${RUN%% *}"; }) >/dev/null 2>&1; then
    return 0
  fi
  if [ "${SOCKSERV_REQUIRE_ALL_TARGETS:-0}" = 1 ]; then
    checks=$((checks + 1)) failures=$((failures + 1))
    echo "FAILED $scenario: $1: its compiler, musl-dev or emulator is not installed (make -s TOOLCHAIN=$1 packages)"
  else
    echo "skip   $scenario: $1 (not installed: make -s TOOLCHAIN=$1 packages)"
  fi
  return 1
}

case "$scenario" in
  cmake-subdirectory)
    cmake_project "add_subdirectory(\"$repo\" sockserv)"
    check "add_subdirectory + sockserv::sockserv (version $version)" \
      cmake_build_and_run "$work/build" -DCMAKE_CXX_COMPILER="$cxx"
    ;;
  cmake-fetchcontent)
    (cd "$repo" && tar czf "$work/sockserv.tar.gz" CMakeLists.txt meson.build LICENSE include)
    cmake_project "include(FetchContent)
FetchContent_Declare(sockserv URL \"file://$work/sockserv.tar.gz\")
FetchContent_MakeAvailable(sockserv)"
    check "FetchContent_Declare(URL tarball) + FetchContent_MakeAvailable" \
      cmake_build_and_run "$work/build" -DCMAKE_CXX_COMPILER="$cxx"
    ;;
  cmake-toolchain)
    # The toolchain file brings the target's flags. The host's CXXFLAGS and
    # LDFLAGS (make ubsan/asan export -fsanitize=...) are not for a static
    # musl target, and CMake would take them from the environment.
    unset CXXFLAGS LDFLAGS
    cmake_project "add_subdirectory(\"$repo\" sockserv)"
    for target in x86_64-linux-musl mipsel-linux-musl; do
      have_target $target || continue
      run=$(make -s -f "$repo/toolchains/flags.mk" TOOLCHAIN=$target print-flags | sed -n "s/^RUN='\(.*\)'$/\1/p")
      RUN=$run
      check "CMAKE_TOOLCHAIN_FILE=toolchains/cmake/$target.cmake: builds, runs" \
        cmake_build_and_run "$work/build-$target" -DCMAKE_TOOLCHAIN_FILE="$repo/toolchains/cmake/$target.cmake"
      RUN=
      checks=$((checks + 1))
      if [ -f "$work/build-$target/hello" ] && is_static "$work/build-$target/hello"; then
        echo "ok     $scenario: $target hello is static"
      else
        echo "FAILED $scenario: $target hello is not a static executable"
        failures=$((failures + 1))
      fi
    done
    ;;
  meson)
    mkdir -p "$work/project/subprojects"
    cp "$work/hello.cpp" "$work/project/"
    ln -s "$repo" "$work/project/subprojects/sockserv"
    cat >"$work/project/meson.build" <<'MESON'
project('consumer', 'cpp', default_options: ['cpp_std=c++17', 'werror=true', 'warning_level=2'])
sockserv_dep = dependency('sockserv', version: '>=0.1', fallback: ['sockserv', 'sockserv_dep'])
executable('hello', 'hello.cpp', dependencies: sockserv_dep,
           cpp_args: '-DEXPECTED_VERSION="' + sockserv_dep.version() + '"')
MESON
    check "subproject dependency('sockserv', version: '>=0.1') (version $version)" sh -c '
      CXX="$1" meson setup "$2/build" "$2/project" && meson compile -C "$2/build" && "$2/build/hello"' _ "$cxx" "$work"
    ;;
  flags-mk)
    for target in x86_64-linux-musl mipsel-linux-musl arm-linux-musleabihf aarch64-linux-musl; do
      have_target $target || continue
      check "eval \"\$(make -f toolchains/flags.mk TOOLCHAIN=$target print-flags)\": builds static, runs" sh -c '
        eval "$(make -s -f "$1/toolchains/flags.mk" TOOLCHAIN=$2 print-flags)" || exit 1
        $CXX $CXXFLAGS -DEXPECTED_VERSION=\"$4\" $STARTFILES "$3/hello.cpp" -o "$3/hello-$2" $LDFLAGS || exit 1
        ! readelf -l "$3/hello-$2" | grep -q INTERP || { echo "not static"; exit 1; }
        $RUN "$3/hello-$2"' _ "$repo" "$target" "$work" "$version"
    done
    ;;
  flag-stamp)
    # The project's own build: a build directory built with some flags is
    # out of date for other flags (BUILD/flags.stamp), up to date for the same.
    check "built once, the same flags find it up to date" sh -c '
      make -s -C "$1" --no-print-directory BUILD="$2/b" "$2/b/examples/tcp_client" &&
      make -q -C "$1" --no-print-directory BUILD="$2/b" "$2/b/examples/tcp_client"' _ "$repo" "$work"
    check "CXXFLAGS='-fno-exceptions -fno-rtti' finds it out of date" sh -c '
      ! make -q -C "$1" --no-print-directory BUILD="$2/b" CXXFLAGS="-fno-exceptions -fno-rtti" "$2/b/examples/tcp_client"' _ "$repo" "$work"
    ;;
  install)
    check "make install: pkg-config and find_package(sockserv)" sh -c '
      make -s -C "$1" --no-print-directory install TOOLCHAIN= PREFIX="$2/prefix" DESTDIR= &&
      CXX="$3" "$1/tests/consumer/install_test.sh" "$2/prefix"' _ "$repo" "$work" "$cxx"
    ;;
  *)
    echo "build_systems_test.sh: unknown scenario '$scenario'"
    exit 2
    ;;
esac

if [ "$failures" -eq 0 ]; then
  echo "All tests passed ($checks assertions in $checks test cases)"
else
  echo "test cases: $checks | $((checks - failures)) passed | $failures failed"
fi
[ "$failures" -eq 0 ]
