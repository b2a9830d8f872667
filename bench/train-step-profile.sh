#!/usr/bin/env bash
# Where one training step's time goes, ours against PyTorch (docs/performance.md, "Training step against PyTorch").
#
#   bench/train-step-profile.sh [BUILD_DIR] [THREADS]      (defaults: build, 1)
#
# Ours: `perf record --call-graph dwarf` of train-step-bench (the model of bench/train-step-vs-pytorch.sh), then
# every sample taken inside the timed step is charged to the kernel the engine called (the first megatron::cpu::
# function under Engine::run or the optimizer code), and, separately, to what the CPU was doing at the leaf:
# OpenBLAS's compute kernels, its packing routines, OpenMP's and OpenBLAS's waiting loops, everything else.
# Samples of set-up (plan loading, parameter initialisation) are left out. Needs perf (linux-perf) and
# perf_event_paranoid <= 2.
# PyTorch: bench/train_step_pytorch.py --profile (torch.profiler, operators grouped the same way).
# STEPS (default 30) timed steps on each side. The environment is passed through (OPENBLAS_CORETYPE,
# OMP_WAIT_POLICY, ...).
set -euo pipefail

BUILD=${1:-build}
THREADS=${2:-1}
STEPS=${STEPS:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=/usr/bin/python3

if ! command -v perf > /dev/null; then
  echo "train-step-profile.sh: perf is not installed (apt-get install linux-perf)" >&2
  exit 1
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$BUILD/bin/megatron-model" --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128 \
  --max-position-embeddings 128 --micro-batch-size 8 --vocab-size 8192 --attention-dropout 0 --hidden-dropout 0 \
  | "$BUILD/bin/megatron-opt" --mt-autodiff --mt-plan=output="$WORK/gpt.plan" -o /dev/null > /dev/null

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); threads $THREADS; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo "== ours: train-step-bench under perf (its timings are inflated by the unwinding; the shares are what counts)"
perf record -q -F 997 --call-graph dwarf,32768 -o "$WORK/perf.data" -- \
  "$BUILD/bin/train-step-bench" --plan="$WORK/gpt.plan" --steps="$STEPS" --benchmark_filter="BM_TrainStep/$THREADS/" \
  2>/dev/null | grep -o 'median_ms=[0-9.k]*' || true
perf script -i "$WORK/perf.data" -F tid,ip,sym,dso 2>/dev/null > "$WORK/perf.txt"
$PYTHON - "$WORK/perf.txt" <<'EOF'
import collections, re, sys

by_kernel, by_leaf, total, setup = collections.Counter(), collections.Counter(), 0, 0
for sample in open(sys.argv[1]).read().split("\n\n"):
    lines = [line for line in sample.split("\n") if line.strip()]
    frames, dsos = [], []  # leaf first
    for line in lines[1:]:
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s*\(([^()]*)\)$", line)
        frames.append(m.group(1) if m else line.strip())
        dsos.append(m.group(2) if m else "")
    if not frames:
        continue
    roots = frames[::-1]
    start = next((i for i, f in enumerate(roots) if "trainStep" in f), None)
    if start is None:
        # OpenMP and OpenBLAS worker threads have no trainStep frame: charge them by what they run.
        if not any("libgomp" in d or "blas_thread_server" in f for f, d in zip(frames, dsos)):
            setup += 1
            continue
        kernel = next((m.group(1) for f in roots if (m := re.match(r"megatron::cpu::([A-Za-z]+)<", f))), None)
        if kernel is None:
            kernel = ("(OpenBLAS's worker: GEMM work or waiting)" if any("blas_thread_server" in f for f in frames)
                      else "(OpenMP's worker between parallel regions)")
    else:
        kernel = next((m.group(1) for f in roots[start + 1:] if (m := re.match(r"megatron::cpu::([A-Za-z]+)<", f))),
                      "memset (gradient arena)" if "memset" in frames[0] else "other")
    leaf = frames[0]
    if re.search(r"sgemm_(small_)?kernel", leaf):
        what = "OpenBLAS compute kernels"
    elif re.search(r"sgemm_[io][tn]copy", leaf):
        what = "OpenBLAS packing (copies)"
    elif "libgomp" in dsos[0]:
        what = "OpenMP waiting (libgomp)"
    elif "yield" in leaf or "schedule" in leaf or "blas_thread_server" in leaf or "syscall" in leaf:
        what = "OpenBLAS worker waiting (sched_yield)"
    else:
        what = "our kernels and the rest"
    by_kernel[kernel] += 1
    by_leaf[what] += 1
    total += 1
print(f"{total} samples in the timed steps ({setup} of set-up left out); by the kernel the engine called:")
for name, n in by_kernel.most_common():
    print(f"  {name:44s} {100.0 * n / total:5.1f}%")
print("by what the CPU was doing:")
for name, n in by_leaf.most_common():
    print(f"  {name:44s} {100.0 * n / total:5.1f}%")
EOF
echo "== PyTorch: torch.profiler"
$PYTHON "$HERE/train_step_pytorch.py" --threads "$THREADS" --steps 10 --warmup 3 --profile 2>&1 \
  | sed -n '/^pytorch threads=/p; /^per step under the profiler/,$p'
