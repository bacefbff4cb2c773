#!/bin/sh
# single_header_test.sh HEADER — uses the generated single header as a
# vendoring user would: the header and the sources are copied into an empty
# directory, and that directory is the only -I. Builds tests/consumer/hello.cpp
# and every example there, runs hello, then runs the examples end to end with
# examples/demo.sh (when it exists). Exit 0: all built, all ran right.
#
# Environment: CXX (default g++), STD (default c++17), CXXFLAGS (added).
set -eu

header=${1:?usage: single_header_test.sh build/single/sockserv.hpp}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cxx=${CXX:-g++}
flags="-std=${STD:-c++17} -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror -O2 ${CXXFLAGS:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/sockserv-single.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/vendor" "$work/src" "$work/examples"
cp "$header" "$work/vendor/sockserv.hpp"
cp "$here/hello.cpp" "$repo"/examples/*.cpp "$work/src/"
cp -R "$repo/examples/common" "$work/src/"  # the examples' shared headers
rm -f "$work"/src/embed_*.cpp  # these need another library's main loop (make examples builds them)

# The header states its license, version and commit at the top.
version=$(sed -n 's/^#define SOCKSERV_VERSION_STRING "\(.*\)"/\1/p' "$repo/include/sockserv/version.hpp")
head -n 1 "$header" | grep -q '^// SPDX-License-Identifier: BSL-1.0$' || { echo "FAIL: no SPDX line atop $header"; exit 1; }
grep -q "^// sockserv $version, commit " "$header" || { echo "FAIL: $header does not state version $version and its commit"; exit 1; }
grep -q "^// Boost Software License - Version 1.0" "$header" || { echo "FAIL: no license text in $header"; exit 1; }

# The preprocessor must read nothing of this repository but the copy.
# shellcheck disable=SC2086
deps=$(cd "$work" && $cxx $flags -Ivendor -M src/hello.cpp)
if echo "$deps" | grep -q "$repo/include"; then
  echo "FAIL: the single-header build read headers from $repo/include"
  exit 1
fi

for source in "$work"/src/*.cpp; do
  name=$(basename "$source" .cpp)
  # TLS is not in the single header (it needs BearSSL): its examples use include/.
  if grep -q 'sockserv/tls.hpp' "$source"; then rm "$source"; continue; fi
  echo "   $cxx -I<only sockserv.hpp> $name.cpp"
  # shellcheck disable=SC2086
  (cd "$work" && $cxx $flags -Ivendor -pthread "src/$name.cpp" -o "examples/$name")
done

"$work/examples/hello"
if [ -x "$repo/examples/demo.sh" ]; then
  BUILD="$work" "$repo/examples/demo.sh"
fi
echo "single header: ok ($(wc -l <"$header") lines, $(wc -c <"$header") bytes)"
