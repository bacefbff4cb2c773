#!/bin/sh
# Each tests/compile_fail/*.cpp must fail to compile, with an error that
# contains its "// expect:" text (the message a user would need). Prints a
# Catch2-style summary line for tests/run_all.sh. CXX defaults to g++.
cd "$(dirname "$0")/../.." || exit 1
CXX=${CXX:-g++}
passed=0
failed=0
for source in tests/compile_fail/*.cpp; do
  expect=$(sed -n 's|^// expect: ||p' "$source")
  if output=$($CXX -std=c++17 -fsyntax-only -Iinclude "$source" 2>&1); then
    echo "FAILED $source compiled"
    failed=$((failed + 1))
  elif printf '%s' "$output" | grep -qF "$expect"; then
    echo "ok     $source: refused with \"$expect\""
    passed=$((passed + 1))
  else
    echo "FAILED $source: refused, but no \"$expect\" in:"
    printf '%s\n' "$output" | head -5
    failed=$((failed + 1))
  fi
done
if [ "$failed" -gt 0 ]; then
  echo "test cases: $((passed + failed)) | $passed passed | $failed failed"
  exit 1
fi
echo "All tests passed ($passed assertions in $passed test cases)"
