#!/bin/sh
# Runs each Catch2 binary given, then prints the one line CI reads:
# "N passed, M failed" — test cases over all binaries. A binary that dies
# before printing its summary (crash, timeout) counts as one failure.
# RUN: optional prefix (an emulator); TEST_TIMEOUT: seconds per binary.
# A *.py argument is a process-level test script run with python3, a *.sh
# one a script run with sh; a *.log argument is the output of a check that
# make ran already. Each ends with a Catch2-style summary line too.
passed=0
failed=0
for binary in "$@"; do
  echo "== $binary"
  log=$(mktemp)
  # Into a file, not a pipe: a forked child left behind by a hung test must
  # not keep the run waiting for the pipe to close.
  # shellcheck disable=SC2086
  case "$binary" in
    *.py) timeout -k 10 "${TEST_TIMEOUT:-600}" python3 "$binary" >"$log" 2>&1 ;;  # a native-only script
    *.log) cp "$binary" "$log" ;;  # a check make already ran, beside the build (BUILD/checks/)
    *.sh) timeout -k 10 "${TEST_TIMEOUT:-600}" sh "$binary" >"$log" 2>&1 ;;       # likewise (compile_fail)
    *) timeout -k 10 "${TEST_TIMEOUT:-600}" $RUN "$binary" >"$log" 2>&1 ;;
  esac
  cat "$log"
  summary=$(grep -E '^(All tests passed|test cases:)' "$log" | tail -n 1)
  case "$summary" in
    "All tests passed"*)
      n=$(echo "$summary" | sed -E 's/.* in ([0-9]+) test case.*/\1/')
      passed=$((passed + n)) ;;
    "test cases:"*)
      p=$(echo "$summary" | sed -nE 's/.*\| *([0-9]+) passed.*/\1/p')
      f=$(echo "$summary" | sed -nE 's/.*\| *([0-9]+) failed.*/\1/p')
      passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})) ;;
    *)
      echo "!! $binary ended without a Catch2 summary (crash or timeout)"
      failed=$((failed + 1)) ;;
  esac
  rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
