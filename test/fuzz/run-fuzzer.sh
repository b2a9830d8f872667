#!/usr/bin/env bash
# Builds the libFuzzer target for parsing and verifying mt IR with clang 19 in its own build directory and runs it.
#
#   test/fuzz/run-fuzzer.sh [SECONDS] [LIBFUZZER-FLAGS...]     SECONDS defaults to 60
#
# Needs clang-19, libclang-rt-19-dev (libFuzzer, ASan) and libomp-19-dev (the whole project is configured, and
# the CPU runtime wants OpenMP). Environment: BUILD_DIR (default build-fuzz), MAX_LEN (default 4096).
#
# Inputs that find new coverage accumulate in $BUILD_DIR/fuzz-corpus; crashes, timeouts and OOMs land in
# $BUILD_DIR/fuzz-artifacts/ (replay one with `$BUILD_DIR/bin/mt-parse-verify-fuzzer FILE`, minimize it with
# `-minimize_crash=1 -runs=20000 FILE`). Extra arguments are libFuzzer flags (not directories), e.g. `-fork=2
# -ignore_crashes=1` to use both cores and keep going after a crash. See docs/development.md, "Fuzzing".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_TO_RUN=${1:-60}
shift || true
MAX_LEN=${MAX_LEN:-4096}

for tool in clang-19 clang++-19; do
  command -v "$tool" > /dev/null || { echo "run-fuzzer.sh: $tool not found (apt-get install clang-19 libclang-rt-19-dev libomp-19-dev)" >&2; exit 1; }
done

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  CC=clang-19 CXX=clang++-19 cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMEGATRON_BUILD_FUZZERS=ON \
    -DMEGATRON_BUILD_BENCHMARKS=OFF \
    -DMEGATRON_ENABLE_CUDA=OFF
fi
ninja -C "$BUILD_DIR" mt-parse-verify-fuzzer

# Seeds: the corpus in the repository, plus every case of the lit tests' inputs (split at `// -----`).
SEEDS="$BUILD_DIR/fuzz-seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS" "$BUILD_DIR/fuzz-corpus" "$BUILD_DIR/fuzz-artifacts"
find "$ROOT/test/Dialect" "$ROOT/test/Passes" -name '*.mlir' | sort | while read -r file; do
  awk -v prefix="$SEEDS/$(basename "$file" .mlir)" '
    BEGIN { n = 0; out = prefix "." n ".mlir" }
    /^[[:space:]]*\/\/ -----[[:space:]]*$/ { close(out); n++; out = prefix "." n ".mlir"; next }
    { print > out }' "$file"
done

cd "$BUILD_DIR"
exec "$BUILD_DIR/bin/mt-parse-verify-fuzzer" \
  -max_len="$MAX_LEN" \
  -dict="$ROOT/test/fuzz/mt.dict" \
  -max_total_time="$SECONDS_TO_RUN" \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="$BUILD_DIR/fuzz-artifacts/" \
  "$@" \
  "$BUILD_DIR/fuzz-corpus" "$ROOT/test/fuzz/corpus" "$SEEDS"
