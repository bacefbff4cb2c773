#!/bin/sh
# check_headers.sh [DIR] — every header under DIR (default include/) carries
# the license line "// SPDX-License-Identifier: BSL-1.0" among its first
# five lines. Run by make test; ends with a Catch2-style summary line that
# tests/run_all.sh counts. Exit 1 names each header without it.
set -u
dir=${1:-include}
checked=0 missing=0
for header in $(find "$dir" -name '*.hpp' -o -name '*.h' | sort); do
  checked=$((checked + 1))
  if ! head -n 5 "$header" | grep -q '^// SPDX-License-Identifier: BSL-1.0$'; then
    echo "FAILED $header: no '// SPDX-License-Identifier: BSL-1.0' line at its top"
    missing=$((missing + 1))
  fi
done
if [ "$checked" -eq 0 ]; then
  echo "FAILED no headers under $dir"
  echo "test cases: 1 | 0 passed | 1 failed"
  exit 1
fi
if [ "$missing" -eq 0 ]; then
  echo "ok     all $checked headers under $dir carry the SPDX license line"
  echo "All tests passed ($checked assertions in 1 test case)"
else
  echo "test cases: 1 | 0 passed | 1 failed"
fi
[ "$missing" -eq 0 ]
