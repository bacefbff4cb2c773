#!/bin/sh
# fuzz/run.sh BUILD_DIR NAME... — runs each libFuzzer target for FUZZ_SECONDS
# (default 30) from its seed corpus fuzz/corpus/NAME; new inputs go to
# BUILD_DIR/corpus/NAME, a failing input to BUILD_DIR/crash-NAME-*. Prints a
# line per target (executions, coverage, corpus) and fails if any target
# found a failing input: keep it as fuzz/regressions/NAME/<name> once fixed.
set -u
build=$1
shift
seconds=${FUZZ_SECONDS:-30}
failed=
for name in "$@"; do
  mkdir -p "$build/corpus/$name"
  log="$build/$name.log"
  echo "== $name: $seconds s"
  "$build/$name" -max_total_time="$seconds" -max_len=16384 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/crash-$name-" "$build/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  cov=$(echo "$done_line" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')
  ft=$(echo "$done_line" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')
  corpus=$(echo "$done_line" | sed -nE 's/.*corp: ([0-9]+\/[0-9a-zA-Z]+).*/\1/p')
  if [ "$status" -eq 0 ]; then
    echo "$name: ${runs:-?} executions, coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corpus:-?}; no failure"
  else
    echo "!! $name: FAILED after ${runs:-?} executions (status $status); log: $log"
    grep -E '^!! fuzz target|ERROR: |SUMMARY: |Test unit written' "$log" | head -n 8
    failed="$failed $name"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: failing inputs in:$failed"
  exit 1
fi
echo "fuzz: $# targets, no failure"
