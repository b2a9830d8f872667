#!/usr/bin/env bash
# A GPT training step in bf16 on one GPU, ours against PyTorch on the same model in the same run (issue 7's
# benchmark; docs/performance.md, "Training step on a GPU"). Two phases, because the GPU machines have no MLIR
# toolchain (scripts/gpu-check.sh packs the plans here and runs them there):
#
#   bench/gpu-train-step.sh plans BUILD_DIR PLAN_DIR   compile each shape's plan with megatron-model | megatron-opt
#                                                      --mt-mixed-precision --mt-autodiff --mt-fuse-elementwise
#                                                      --mt-plan
#   bench/gpu-train-step.sh run BIN_DIR PLAN_DIR       on the GPU: device-train-step-bench from BIN_DIR and
#                                                      bench/train_step_pytorch.py --device cuda --bf16 --sdpa
#                                                      --fused-adamw, alternating, ROUNDS times per shape
#
# Shapes (SHAPES, default all three; GPT-2's vocabulary padded to 50304 as Megatron pads it):
#   gpt2-small   12 layers, hidden 768,  12 heads, seq 1024, micro-batch 8
#   gpt2-medium  24 layers, hidden 1024, 16 heads, seq 1024, micro-batch 8
#   gpt-1.3b     24 layers, hidden 2048, 16 heads, seq 2048, micro-batch 4
# No dropout, learned positions, tied embeddings: the model train_step_pytorch.py builds (it checks the plan's
# parameter names and shapes). One step on both sides: forward, loss, backward, gradient norm and clipping to 1.0,
# AdamW. Each run is a fresh process with WARMUP untimed and STEPS timed steps; its figure is the median step.
# The summary gives per shape the medians over rounds, tokens/s, model TFLOP/s and MFU (the plan's FLOPs, the same
# count for both sides), and the ratio ours/PyTorch in tokens/s. The first round of ours also prints where one
# iteration's time goes (the 25 largest kinds of work: device-train-step-bench --profile).
#
# Settings: ROUNDS (default 2), STEPS (10), WARMUP (3), PYTHON (python3: the GPU machines' has torch).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
PYTHON=${PYTHON:-python3}
SHAPES=${SHAPES:-"gpt2-small gpt2-medium gpt-1.3b"}

# Flags both megatron-model and train_step_pytorch.py take, per shape.
shape_flags() {
  case $1 in
    gpt2-small) echo "--num-layers 12 --hidden-size 768 --num-attention-heads 12 --seq-length 1024 --micro-batch-size 8" ;;
    gpt2-medium) echo "--num-layers 24 --hidden-size 1024 --num-attention-heads 16 --seq-length 1024 --micro-batch-size 8" ;;
    gpt-1.3b) echo "--num-layers 24 --hidden-size 2048 --num-attention-heads 16 --seq-length 2048 --micro-batch-size 4" ;;
    *) echo "gpu-train-step.sh: unknown shape '$1' (gpt2-small, gpt2-medium, gpt-1.3b)" >&2; return 1 ;;
  esac
}
VOCAB=50304

usage() {
  echo "usage: bench/gpu-train-step.sh plans BUILD_DIR PLAN_DIR | run BIN_DIR PLAN_DIR" >&2
  exit 1
}
[[ $# -eq 3 ]] || usage
MODE=$1
DIR=$2
PLANS=$3

if [[ $MODE == plans ]]; then
  mkdir -p "$PLANS"
  for shape in $SHAPES; do
    flags=$(shape_flags "$shape")
    seq=$(sed 's/.*--seq-length \([0-9]*\).*/\1/' <<< "$flags")
    # shellcheck disable=SC2086
    "$DIR/bin/megatron-model" $flags --max-position-embeddings "$seq" --vocab-size $VOCAB --attention-dropout 0 \
      --hidden-dropout 0 --bf16 > "$PLANS/$shape.mlir"
    "$DIR/bin/megatron-opt" --mt-mixed-precision --mt-autodiff --mt-fuse-elementwise \
      --mt-plan=output="$PLANS/$shape.plan" \
      "$PLANS/$shape.mlir" -o /dev/null
    rm "$PLANS/$shape.mlir"
    echo "$shape: $(wc -c < "$PLANS/$shape.plan") bytes of plan"
  done
  exit 0
fi
[[ $MODE == run ]] || usage

"$PYTHON" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null \
  || { echo "gpu-train-step.sh: $PYTHON cannot import torch with CUDA" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: > "$WORK/results.txt"

for shape in $SHAPES; do
  flags=$(shape_flags "$shape")
  plan="$PLANS/$shape.plan"
  [[ -f $plan ]] || { echo "gpu-train-step.sh: $plan is missing (run the plans phase)" >&2; exit 1; }
  for ((round = 1; round <= ROUNDS; round++)); do
    ours() { # the first round also profiles one iteration (device-train-step-bench --profile)
      "$DIR/device-train-step-bench" --plan "$plan" --steps "$STEPS" --warmup "$WARMUP" \
        $( ((round == 1)) && echo --profile) > "$WORK/ours.txt" 2>&1 \
        || { cat "$WORK/ours.txt" >&2; return 1; }
      cat "$WORK/ours.txt" >> "$WORK/ours-$shape.log"
    }
    pytorch() {
      # shellcheck disable=SC2086
      "$PYTHON" "$HERE/train_step_pytorch.py" --device cuda --bf16 --sdpa --fused-adamw $flags \
        --vocab-size $VOCAB --steps "$STEPS" --warmup "$WARMUP" --plan "$plan" > "$WORK/pytorch.txt" 2>&1 \
        || { cat "$WORK/pytorch.txt" >&2; return 1; }
      cat "$WORK/pytorch.txt" >> "$WORK/pytorch-$shape.log"
    }
    if ((round % 2)); then ours; pytorch; else pytorch; ours; fi
    line=$(grep '^ours ' "$WORK/ours.txt")
    om=$(sed 's/.*median_ms=\([0-9.]*\).*/\1/' <<< "$line")
    tflops=$(sed 's/.*model_tflops=\([0-9.]*\).*/\1/' <<< "$line")
    mfu=$(sed 's/.*mfu=\([0-9.]*\).*/\1/' <<< "$line")
    pm=$(sed -n 's/^pytorch .*median_ms=\([0-9.]*\).*/\1/p' "$WORK/pytorch.txt")
    echo "$shape $round $om $pm $tflops $mfu" >> "$WORK/results.txt"
    printf '%-12s round %d: ours %9.2f ms  pytorch %9.2f ms  ratio (pytorch/ours) %.2f\n' "$shape" "$round" "$om" \
      "$pm" "$(echo "$pm / $om" | bc -l)"
  done
  grep -m3 -E '^(device|plan|kernels):' "$WORK/ours-$shape.log" | sed 's/^/  ours: /'
  grep -m1 '^pytorch .*parameters' "$WORK/pytorch-$shape.log" | sed 's/^/  peer: /'
  grep -m1 '^losses:' "$WORK/ours-$shape.log" | sed 's/^/  ours /'
  grep -m1 '^warm-up losses:' "$WORK/pytorch-$shape.log" | sed 's/^/  pytorch /'
  grep -A 25 '^profile:' "$WORK/ours-$shape.log" | sed 's/^/  ours /'
done

"$PYTHON" - "$WORK/results.txt" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print("\nsummary: median over rounds of each run's median step; tokens/s; model TFLOP/s and MFU from the plan's FLOPs")
print(f"{'shape':12s} {'ours ms':>9s} {'pytorch ms':>10s} {'ours TFLOP/s':>12s} {'ours MFU':>8s} "
      f"{'pytorch MFU':>11s} {'speedup':>7s}")
for shape in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == shape]
    om = statistics.median(float(r[2]) for r in mine)
    pm = statistics.median(float(r[3]) for r in mine)
    tflops = statistics.median(float(r[4]) * float(r[2]) / om for r in mine)
    mfu = statistics.median(float(r[5]) * float(r[2]) / om for r in mine)
    print(f"{shape:12s} {om:9.2f} {pm:10.2f} {tflops:12.1f} {mfu:8.1%} {mfu * om / pm:11.1%} {pm / om:7.2f}x")
EOF
