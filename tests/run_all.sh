#!/bin/sh
# Runs each Catch2 binary given, then prints the one line CI reads:
# "N passed, M failed" — test cases over all binaries. A binary that dies
# before printing its summary (crash, timeout) counts as one failure.
# Each program is run by tests/run_one.sh (RUN: an emulator prefix;
# TEST_TIMEOUT: seconds per program; *.py and *.sh: scripts). A *.log
# argument is the output of a program or check that make ran already. Each
# ends with a Catch2-style summary line.
passed=0
failed=0
# CI shows only the end of the output: the failed test cases are listed
# again, with their program, just above the count line.
failures=$(mktemp)
for binary in "$@"; do
  echo "== $binary"
  log=$(mktemp)
  # Into a file, not a pipe: a forked child left behind by a hung test must
  # not keep the run waiting for the pipe to close.
  case "$binary" in
    *.log) cp "$binary" "$log" ;;  # a program make ran already (BUILD/runs/, BUILD/checks/)
    *) "$(dirname "$0")/run_one.sh" "$binary" >"$log" 2>&1 ;;
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
      passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
      # Catch2 prints each failing test case's name between two dashed
      # rules, above its "FAILED:" lines; the scripts' checks (tests/consumer,
      # tests/compile_fail, ...) print "FAILED what" instead.
      awk -v program="$binary" '
        /^----------+$/ { header = !header; if (header) { name = ""; first = 1 }; next }
        header && first { name = $0; first = 0; next }
        /FAILED:$/ && name != "" { print "!! failed: " program ": " name }
        /^FAILED / { print "!! failed: " program ": " substr($0, 8) }
      ' "$log" | sort -u >>"$failures" ;;
    *)
      echo "!! $binary ended without a Catch2 summary (crash or timeout)"
      echo "!! failed: $binary: no summary (crash or timeout); its last line: $(tail -n 1 "$log")" >>"$failures"
      failed=$((failed + 1)) ;;
  esac
  rm -f "$log"
done
cat "$failures"; rm -f "$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
