#!/bin/sh
# run_one.sh PROGRAM — runs one test program of the suite, its output on
# stdout, bounded by TEST_TIMEOUT seconds (default 600): a Catch2 binary
# (under RUN, an optional emulator prefix), a process-level *.py script
# (python3) or a *.sh script. Each ends with a Catch2-style summary line,
# which tests/run_all.sh counts. make test runs each program this way as
# soon as it is built, into BUILD/runs/NAME.log, while the rest compiles.
program=${1:?usage: run_one.sh PROGRAM}
# shellcheck disable=SC2086
case "$program" in
  *.py) exec timeout -k 10 "${TEST_TIMEOUT:-600}" python3 "$program" ;;
  *.sh) exec timeout -k 10 "${TEST_TIMEOUT:-600}" sh "$program" ;;
  *) exec timeout -k 10 "${TEST_TIMEOUT:-600}" $RUN "$program" ;;
esac
