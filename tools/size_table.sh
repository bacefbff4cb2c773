#!/bin/sh
# size_table.sh TARGET DIR CHECKED BUDGET — prints the size of each example
# in DIR (static, stripped binaries for TARGET) as a table, then checks that
# CHECKED is at most BUDGET bytes. Exit 1 when it is not (or was not built).
set -eu
target=$1 dir=$2 checked=$3 budget=$4

size_of() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo -; fi; }

echo "== $target: examples, static and stripped"
printf '%-22s %10s %10s\n' example bytes KiB
for binary in "$dir"/*; do
  [ -f "$binary" ] && [ -x "$binary" ] || continue
  bytes=$(size_of "$binary")
  printf '%-22s %10s %10s\n' "$(basename "$binary")" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1024 }')"
done

got=$(size_of "$dir/$checked")
if [ "$got" = - ]; then
  echo "size: FAIL: $dir/$checked was not built"
  exit 1
fi
if [ -z "$budget" ]; then
  echo "size: $target has no SIZE_BUDGET"
  exit 1
fi
if [ "$got" -gt "$budget" ]; then
  echo "size: FAIL: $target $checked is $got bytes, over the budget of $budget"
  exit 1
fi
echo "size: ok: $target $checked is $got bytes, budget $budget"
