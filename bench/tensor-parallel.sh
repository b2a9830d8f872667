#!/usr/bin/env bash
# Step time of tensor and pipeline parallelism on the CPU backend (docs/performance.md, "Tensor parallelism",
# "Pipeline parallelism"): a tp=2 (or pp=2) plan run by 2 ranks (threads, one core each) against the tp=1 plan on 2
# threads, same model, same machine, same run.
#
#   bench/tensor-parallel.sh [BUILD_DIR]     (default: build; needs megatron-model, megatron-opt, megatron-run)
#
# The model is the GPT of bench/train-step-vs-pytorch.sh: 4 layers, hidden 256, 4 heads, seq 128, micro-batch 8,
# vocab 8192, fp32, dropout off, GLOBAL_BATCH sequences per iteration (default 8: one micro-batch). Variants
# (VARIANTS, default "tp1 tp2 tp2sp"): the whole model on 2 threads; --mt-shard="tensor-parallel=2" on 2 ranks;
# the same with sequence-parallel=1; pp2, --mt-pipeline="stages=2" on 2 ranks (1F1B over the iteration's
# micro-batches: run it with GLOBAL_BATCH=32 or more); pp2cost, the same with balance=cost (the layers split
# by forward FLOPs, the logits counting for the last stage); bf16 and fp16, the tp1 model compiled with
# --mt-mixed-precision (the CPU backend's 16-bit emulation, docs/precision.md: what rounding every 16-bit output
# costs on top of f32). Each round runs every variant
# once as a fresh megatron-run process (ITERS iterations, --log-interval 1, the first WARMUP dropped), in an order
# that rotates from round to round; a run's figure is the median of its iterations' times (megatron-run's
# "elapsed time per iteration"), and the time its rank 0 spent inside collectives (megatron-run's
# "communication (ms)" per iteration: from entering a collective to leaving it, so waiting for the other rank
# counts too).
# The summary gives per variant the median over rounds, and the median of the per-round ratios to tp1.
#
# Settings: ROUNDS (5), ITERS (12), WARMUP (2), VARIANTS. The load average is printed before and after.
set -euo pipefail

BUILD=${1:-build}
ROUNDS=${ROUNDS:-5}
ITERS=${ITERS:-12}
WARMUP=${WARMUP:-2}
VARIANTS=${VARIANTS:-"tp1 tp2 tp2sp"}
GLOBAL_BATCH=${GLOBAL_BATCH:-8}
for tool in megatron-model megatron-opt megatron-run; do
  [[ -x $BUILD/bin/$tool ]] || { echo "tensor-parallel.sh: $BUILD/bin/$tool is missing; build it first" >&2; exit 1; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$BUILD/bin/megatron-model" --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128 \
  --max-position-embeddings 128 --micro-batch-size 8 --global-batch-size "$GLOBAL_BATCH" --vocab-size 8192 \
  --attention-dropout 0 --hidden-dropout 0 \
  -o "$WORK/model.mlir"
declare -A LAYOUT=([tp1]="--mt-shard=tensor-parallel=1" [tp2]="--mt-shard=tensor-parallel=2"
                   [tp2sp]="--mt-shard=tensor-parallel=2 sequence-parallel=1" [pp2]="--mt-pipeline=stages=2"
                   [pp2cost]="--mt-pipeline=stages=2 balance=cost" [bf16]="--mt-mixed-precision=dtype=bf16"
                   [fp16]="--mt-mixed-precision=dtype=fp16")
for v in $VARIANTS; do
  "$BUILD/bin/megatron-opt" "$WORK/model.mlir" "${LAYOUT[$v]}" --mt-autodiff \
    --mt-plan=output="$WORK/$v.plan" -o /dev/null > /dev/null
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r -a names <<< "$VARIANTS"
for ((round = 0; round < ROUNDS; ++round)); do
  for ((i = 0; i < ${#names[@]}; ++i)); do
    v=${names[$(((i + round) % ${#names[@]}))]}
    "$BUILD/bin/megatron-run" --plan "$WORK/$v.plan" --train-iters "$ITERS" --log-interval 1 --eval-interval 100000 \
      --cpu-threads 2 --no-progress > "$WORK/$v.$round.log"
    median=$(grep -oE 'elapsed time per iteration \(ms\): [0-9.]+' "$WORK/$v.$round.log" | awk '{print $NF}' \
      | tail -n +$((WARMUP + 1)) | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    comm=$({ grep -oE 'communication \(ms\): [0-9.]+' "$WORK/$v.$round.log" || true; } | awk '{print $NF}' | tail -n +$((WARMUP + 1)) | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    echo "$round $v $median ${comm:-0}" >> "$WORK/results"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

/usr/bin/python3 - "$WORK/results" "$VARIANTS" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
variants = sys.argv[2].split()
by = {}
for round_, v, ms, comm in rows:
    by.setdefault(v, {})[int(round_)] = (float(ms), float(comm))
print("| variant | step (ms), median of rounds | range | in collectives (ms) | ratio to tp1 (median of rounds) |")
print("|---|---:|---:|---:|---:|")
for v in variants:
    ms = [x[0] for x in by[v].values()]
    comm = [x[1] for x in by[v].values()]
    ratios = [by[v][r][0] / by["tp1"][r][0] for r in by[v] if "tp1" in by and r in by["tp1"]]
    ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
    print(f"| {v} | {statistics.median(ms):.1f} | {min(ms):.1f}-{max(ms):.1f} | {statistics.median(comm):.1f} | {ratio} |")
PY
