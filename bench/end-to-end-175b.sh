#!/usr/bin/env bash
# Wall time of the command line the issue sets a bar for (under 2 s at gpt3-175b):
#
#   megatron-model --preset gpt3-175b | megatron-opt --mt-report
#
# and of the same at 2x and 4x the layers (--num-layers 192, 384), with the time per layer relative to 96 layers
# (1.00 means exactly linear). Each shape runs once to warm the page cache, then RUNS times (default 5); the best
# and the median are printed.
#
# Usage: bench/end-to-end-175b.sh [build-dir]     (default: build; RUNS=n in the environment changes the count)
#
# megatron-opt writes the report and the output module to stdout, redirected to a file in a temporary directory
# (page cache, no fsync), so that the fsync of `-o FILE`'s atomic write is not what gets timed.
set -euo pipefail

build="${1:-build}"
runs="${RUNS:-5}"
model="$build/bin/megatron-model"
opt="$build/bin/megatron-opt"
for tool in "$model" "$opt"; do
  if [[ ! -x "$tool" ]]; then
    echo "end-to-end-175b.sh: $tool not found; build first (ninja -C $build)" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One run of the pipeline at `layers` layers; prints its wall time in seconds. A failed run leaves $work/failed.
run_once() {
  local layers="$1"
  local TIMEFORMAT='%3R'
  {
    time (if ! "$model" --preset gpt3-175b --num-layers "$layers" 2>"$work/model.err" |
              "$opt" --mt-report >"$work/out.mlir" 2>"$work/opt.err"; then
            cat "$work/model.err" "$work/opt.err" >"$work/failed"
          fi)
  } 2>"$work/time"
  tail -n 1 "$work/time"
}

# Prints "best median" of `runs` runs.
measure() {
  local layers="$1"
  run_once "$layers" >"$work/warm-up" # warm-up
  local times=()
  for ((i = 0; i < runs; ++i))
    do times+=("$(run_once "$layers")")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ t[NR] = $1 } END {
    median = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    printf "%.3f %.3f\n", t[1], median }'
}

echo "megatron-model --preset gpt3-175b [--num-layers N] | megatron-opt --mt-report >file"
echo "build: $build, $runs runs per shape after one warm-up, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo
# The report of the real model, as a check that the pipeline does what it should.
if ! report="$("$model" --preset gpt3-175b | "$opt" --mt-report)"; then
  echo "end-to-end-175b.sh: the pipeline failed at gpt3-175b" >&2
  exit 1
fi
grep -E '^mt-report|parameters:' <<<"$report"
echo

printf '%7s  %9s  %9s  %14s  %18s\n' layers best_s median_s median_ms/layer per-layer_vs_96
base=""
for layers in 96 192 384; do
  read -r best median < <(measure "$layers")
  if [[ -e "$work/failed" ]]; then
    echo "end-to-end-175b.sh: the pipeline failed at $layers layers:" >&2
    cat "$work/failed" >&2
    exit 1
  fi
  per_layer_ms="$(awk -v m="$median" -v l="$layers" 'BEGIN { printf "%.3f", 1000 * m / l }')"
  if [[ -z "$base" ]]; then base="$per_layer_ms"; fi
  ratio="$(awk -v p="$per_layer_ms" -v b="$base" 'BEGIN { printf "%.2f", p / b }')"
  printf '%7s  %9s  %9s  %14s  %18s\n' "$layers" "$best" "$median" "$per_layer_ms" "$ratio"
  if [[ "$layers" == 96 ]]; then t96="$median"; fi
done
echo
awk -v t="$t96" 'BEGIN { printf "gpt3-175b (96 layers): median %.3f s against the 2 s bar: %s\n", t, (t < 2 ? "under" : "OVER") }'
