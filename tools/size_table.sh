#!/bin/sh
# size_table.sh GLIBC_DIR MUSL_DIR CHECKED BUDGET — prints each example's
# size (static, stripped) built against glibc and against musl, then checks
# that CHECKED under musl is at most BUDGET bytes. Exit 1 when it is not.
set -eu
glibc=$1 musl=$2 checked=$3 budget=$4

size_of() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo -; fi; }
kib() { case $1 in -) echo - ;; *) awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }' ;; esac; }

printf '%-22s %22s %22s\n' example "static glibc" "static musl"
for binary in "$musl"/* "$glibc"/*; do
  [ -f "$binary" ] && basename "$binary"
done | sort -u | while read -r name; do
  g=$(size_of "$glibc/$name") m=$(size_of "$musl/$name")
  printf '%-22s %10s %11s %10s %11s\n' "$name" "$g" "($(kib "$g"))" "$m" "($(kib "$m"))"
done

got=$(size_of "$musl/$checked")
if [ "$got" = - ]; then
  echo "size: $musl/$checked was not built"
  exit 1
fi
if [ "$got" -gt "$budget" ]; then
  echo "size: FAIL: $checked (musl, static, stripped) is $got bytes, over the budget of $budget"
  exit 1
fi
echo "size: ok: $checked (musl, static, stripped) is $got bytes, budget $budget"
