#!/usr/bin/env bash
# One training step of a small GPT, ours against PyTorch, on 1 and 2 threads (docs/performance.md, "Training step
# against PyTorch").
#
#   bench/train-step-vs-pytorch.sh [BUILD_DIR]        (default: build; needs megatron-model, megatron-opt and
#                                                      train-step-bench built there)
#
# The model: megatron-model --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128
# --max-position-embeddings 128 --micro-batch-size 8 --vocab-size 8192 --attention-dropout 0 --hidden-dropout 0
# (fp32, 5.29 M parameters). It is compiled to a plan (megatron-opt --mt-autodiff --mt-plan); PyTorch builds the
# same model (bench/train_step_pytorch.py), which must have the plan's parameter names and shapes and
# --mt-report's parameter count.
#
# One step, on both sides: forward, loss, backward, global gradient norm and clipping to 1.0, AdamW, zeroing the
# gradients. For each round, environment and thread count T, ours (train-step-bench, BM_TrainStep/T) and
# PyTorch's run one after the other, in alternating order (ours first in odd rounds), each as a fresh process with
# WARMUP untimed steps and STEPS timed ones; a run's figure is the median of its steps. The summary gives, per
# environment and T, the median over rounds of the runs' medians, their range, and the median of the per-round
# ratios ours/PyTorch (the two runs of a round are adjacent in time, so their ratio is less exposed to the
# machine's changing load).
#
# Environments (MODES, default "default tuned"), each applied to both sides:
#   default  the environment as it is: what a user gets out of the box;
#   tuned    OMP_WAIT_POLICY=passive and OPENBLAS_THREAD_TIMEOUT=4: the idle workers of OpenMP and of OpenBLAS
#            sleep at once instead of spinning (with two thread pools on two cores the spinning costs more than
#            the second thread gains; docs/performance.md), and MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1e11:
#            glibc keeps freed memory (PyTorch allocates its activations afresh every step and otherwise takes
#            ~40,000 page faults per step; our runtime allocates nothing per step, so this only helps PyTorch).
#
# Other settings: ROUNDS (default 5), STEPS (20), WARMUP (3), THREADS ("1 2"). OPENBLAS_CORETYPE is passed through
# as set (both sides use the same OpenBLAS, libopenblasp-r0.3.21 on Debian); the script prints it and the kernels
# OpenBLAS chose. OPENBLAS_DIR, when set, goes first on LD_LIBRARY_PATH for both sides (e.g. the OpenMP build of
# OpenBLAS, .../openblas-openmp from libopenblas0-openmp). The load average is printed before and after: on a
# shared machine, quote it with the figures.
set -euo pipefail

BUILD=${1:-build}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-"1 2"}
MODES=${MODES:-"default tuned"}
TUNED_ENV=(OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000)
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=/usr/bin/python3 # Debian's, with torch (the first python3 on PATH may be another)

for tool in megatron-model megatron-opt train-step-bench; do
  if [[ ! -x $BUILD/bin/$tool ]]; then
    echo "train-step-vs-pytorch.sh: $BUILD/bin/$tool is missing; build it first" >&2
    exit 1
  fi
done
$PYTHON -c 'import torch' 2>/dev/null || { echo "train-step-vs-pytorch.sh: $PYTHON cannot import torch" >&2; exit 1; }
if [[ -n ${OPENBLAS_DIR:-} ]]; then
  export LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

MODEL_FLAGS=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128 --max-position-embeddings 128
             --micro-batch-size 8 --vocab-size 8192 --attention-dropout 0 --hidden-dropout 0)
"$BUILD/bin/megatron-model" "${MODEL_FLAGS[@]}" > "$WORK/gpt.mlir"
"$BUILD/bin/megatron-opt" --mt-report "$WORK/gpt.mlir" -o /dev/null > "$WORK/report.txt" 2>&1
"$BUILD/bin/megatron-opt" --mt-autodiff --mt-plan=output="$WORK/gpt.plan" "$WORK/gpt.mlir" -o /dev/null \
  > "$WORK/plan.txt" 2>&1
PARAMS=$(sed -n 's/^ *parameters: \([0-9]*\) .*/\1/p' "$WORK/report.txt")
if [[ -z $PARAMS ]]; then
  echo "train-step-vs-pytorch.sh: no parameter count in --mt-report's output" >&2
  cat "$WORK/report.txt" >&2
  exit 1
fi

echo "model: megatron-model ${MODEL_FLAGS[*]}"
grep -E 'parameters:|FLOPs per iteration' "$WORK/report.txt" | sed 's/^ */  /'
head -1 "$WORK/plan.txt" | sed 's/^/  /'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}, OPENBLAS_DIR=${OPENBLAS_DIR:-(unset)}; environments: $MODES" \
     "(tuned = ${TUNED_ENV[*]}); $ROUNDS rounds of $WARMUP warm-up + $STEPS timed steps per run"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

with_mode() { # mode command...
  local mode=$1
  shift
  if [[ $mode == tuned ]]; then env "${TUNED_ENV[@]}" "$@"; else "$@"; fi
}

ours() { # mode threads round -> "median min core=..."
  local out="$WORK/ours-$1-$2-$3"
  with_mode "$1" "$BUILD/bin/train-step-bench" --plan="$WORK/gpt.plan" --steps="$STEPS" \
    --benchmark_filter="BM_TrainStep/$2/" --benchmark_format=json > "$out.json" 2> "$out.err" \
    || { cat "$out.err" >&2; exit 1; }
  $PYTHON -c '
import json, sys
report = json.load(open(sys.argv[1]))
b = report["benchmarks"][0]
print("%.2f %.2f core=%s" % (b["median_ms"], b["min_ms"], report["context"].get("openblas_core", "?")))' "$out.json"
}

pytorch() { # mode threads round -> "median min"
  local out="$WORK/pytorch-$1-$2-$3.txt"
  with_mode "$1" $PYTHON "$HERE/train_step_pytorch.py" --threads "$2" --steps "$STEPS" --warmup "$WARMUP" \
    --expect-params "$PARAMS" --plan "$WORK/gpt.plan" > "$out" 2>&1 || { cat "$out" >&2; exit 1; }
  sed -n 's/^pytorch threads=[0-9]* median_ms=\([0-9.]*\) min_ms=\([0-9.]*\).*/\1 \2/p' "$out"
}

: > "$WORK/results.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in $MODES; do
    for t in $THREADS; do
      if ((round % 2)); then
        o=$(ours "$mode" "$t" "$round"); p=$(pytorch "$mode" "$t" "$round")
      else
        p=$(pytorch "$mode" "$t" "$round"); o=$(ours "$mode" "$t" "$round")
      fi
      read -r om omin ocore <<< "$o"
      read -r pm pmin <<< "$p"
      echo "$mode $t $round $om $omin $pm $pmin" >> "$WORK/results.txt"
      printf 'round %d, %-8s %d thread(s): ours %7.1f ms (min %6.1f, %s)  pytorch %7.1f ms (min %6.1f)' \
        "$round" "$mode," "$t" "$om" "$omin" "$ocore" "$pm" "$pmin"
      printf '  ratio %.2f  load %s\n' "$(echo "$om / $pm" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
first_mode=${MODES%% *}
grep -m2 -E '^(pytorch |parameters: )' "$WORK/pytorch-$first_mode-${THREADS%% *}-1.txt" | sed 's/^/peer: /'

$PYTHON - "$WORK/results.txt" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print("\nsummary (ms per step: median over rounds of each run's median step [min-max of those], best single step)")
for mode in dict.fromkeys(r[0] for r in rows):
    for t in sorted({r[1] for r in rows if r[0] == mode}, key=int):
        mine = [r for r in rows if r[0] == mode and r[1] == t]
        om = [float(r[3]) for r in mine]
        pm = [float(r[5]) for r in mine]
        ratios = [float(r[3]) / float(r[5]) for r in mine]
        omin = min(float(r[4]) for r in mine)
        pmin = min(float(r[6]) for r in mine)
        print(f"  {mode}, {t} thread(s): ours {statistics.median(om):.1f} [{min(om):.1f}-{max(om):.1f}] best {omin:.1f}"
              f"   pytorch {statistics.median(pm):.1f} [{min(pm):.1f}-{max(pm):.1f}] best {pmin:.1f}")
        print(f"      ratio ours/pytorch: of the medians {statistics.median(om) / statistics.median(pm):.2f}, "
              f"median of the per-round ratios {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
              f", of the best steps {omin / pmin:.2f}   (goal <= 0.80)")
EOF
