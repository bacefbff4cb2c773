#!/bin/sh
# check_release.sh — what a release must get right, checked by make test:
#   1. every header under include/ carries "// SPDX-License-Identifier: BSL-1.0"
#      among its first five lines (new headers too);
#   2. sockserv/version.hpp's MAJOR.MINOR.PATCH spell its VERSION_STRING;
#   3. the packaging recipes that must state a version literally (OpenWrt,
#      Buildroot) state that one.
# Ends with a Catch2-style summary line that tests/run_all.sh counts.
set -u
cd "$(dirname "$0")/.."
cases=0 failed=0
verdict() {  # verdict NAME STATUS
  cases=$((cases + 1))
  if [ "$2" -eq 0 ]; then echo "ok     $1"; else echo "FAILED $1"; failed=$((failed + 1)); fi
}

missing=0 headers=0
for header in $(find include -name '*.hpp' -o -name '*.h' | sort); do
  headers=$((headers + 1))
  if ! head -n 5 "$header" | grep -q '^// SPDX-License-Identifier: BSL-1.0$'; then
    echo "   $header: no '// SPDX-License-Identifier: BSL-1.0' line at its top"
    missing=$((missing + 1))
  fi
done
[ "$headers" -gt 0 ] || missing=1
verdict "all $headers headers under include/ carry the SPDX license line" "$missing"

version_header=include/sockserv/version.hpp
field() { sed -n "s/^#define SOCKSERV_VERSION_$1 \\(.*\\)$/\\1/p" "$version_header"; }
version=$(field STRING | tr -d '"')
[ -n "$version" ] && [ "$(field MAJOR).$(field MINOR).$(field PATCH)" = "$version" ]
verdict "version.hpp: MAJOR.MINOR.PATCH is VERSION_STRING ($version)" $?

openwrt=$(sed -n 's/^PKG_VERSION:=//p' packaging/openwrt/sockserv/Makefile)
buildroot=$(sed -n 's/^SOCKSERV_VERSION = //p' packaging/buildroot/sockserv/sockserv.mk)
[ "$openwrt" = "$version" ] && [ "$buildroot" = "$version" ]
verdict "OpenWrt ($openwrt) and Buildroot ($buildroot) recipes state version.hpp's version" $?

if [ "$failed" -eq 0 ]; then
  echo "All tests passed ($cases assertions in $cases test cases)"
else
  echo "test cases: $cases | $((cases - failed)) passed | $failed failed"
fi
[ "$failed" -eq 0 ]
