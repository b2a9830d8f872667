#!/bin/sh
# Runs a command that must fail (an MPI job in which a rank fails) and checks that it exits non-zero within a time
# limit and that its output holds every expected text (the rank and the reason): ctest's mpi-comm-failure-* tests.
#
#   mpi-failure-check.sh MAX_SECONDS EXPECTED_TEXT... -- COMMAND ARGS...
set -u
limit=$1
shift
expected_count=0
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  expected_count=$((expected_count + 1))
  eval "expected_$expected_count=\$1"
  shift
done
[ "$#" -gt 0 ] && shift # the "--"
output=$(mktemp)
trap 'rm -f "$output"' EXIT
start=$(date +%s%N)
"$@" >"$output" 2>&1
status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
cat "$output"
echo "--- exit status $status after $elapsed_ms ms"
failed=0
if [ "$status" -eq 0 ]; then
  echo "FAIL: the job exited 0; it must fail"
  failed=1
fi
if [ "$elapsed_ms" -gt $((limit * 1000)) ]; then
  echo "FAIL: the job took $elapsed_ms ms; a failed rank must end it within $limit s"
  failed=1
fi
i=1
while [ "$i" -le "$expected_count" ]; do
  eval "text=\$expected_$i"
  if ! grep -qF -- "$text" "$output"; then
    echo "FAIL: the output does not contain: $text"
    failed=1
  fi
  i=$((i + 1))
done
[ "$failed" -eq 0 ] && echo "PASS: failed as expected, naming the rank and the reason"
exit "$failed"
