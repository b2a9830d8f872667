#!/bin/sh
# Runs an MPI job for ctest (test/unit/comm/CMakeLists.txt):
#
#   mpi-test.sh pass -- COMMAND ARGS...                          the job must succeed
#   mpi-test.sh fail MAX_SECONDS EXPECTED_TEXT... -- COMMAND...  it must exit non-zero within MAX_SECONDS, and its
#                                                               output hold every EXPECTED_TEXT (rank, reason)
#
# Each job gets a private TMPDIR: Open MPI 4 keeps its session directory there, and two mpiruns starting at the same
# moment (ctest -j) race on creating a shared one ("mkdir ... /tmp/ompi.HOST.UID: File exists").
set -u
mode=$1
shift
limit=0
if [ "$mode" = fail ]; then
  limit=$1
  shift
fi
expected_count=0
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  expected_count=$((expected_count + 1))
  eval "expected_$expected_count=\$1"
  shift
done
[ "$#" -gt 0 ] && shift # the "--"

TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/megatron-mpi.XXXXXX") || exit 1
export TMPDIR
output="$TMPDIR/output"
trap 'rm -rf "$TMPDIR"' EXIT
start=$(date +%s%N)
"$@" >"$output" 2>&1
status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
cat "$output"
echo "--- exit status $status after $elapsed_ms ms"
if [ "$mode" = pass ]; then
  exit "$status"
fi

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
