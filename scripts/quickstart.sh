#!/usr/bin/env bash
# The main job on the built-in default: train a small GPT on the CPU on the project's own synthetic language
# (docs/data.md), then show the loss curve and a few generated samples. About 20 seconds on 2 cores after the
# first build.
#
#   megatron-model  writes the model in the mt dialect from Megatron-LM's flags;
#   megatron-opt    reports its cost, differentiates it and compiles the training step into a plan;
#   megatron-run    trains the plan, saves checkpoints, draws the loss curve and samples text.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/bin"

"$root/scripts/build.sh" >/dev/null
out="$build/quickstart"
rm -rf "$out/checkpoints"
mkdir -p "$out"

# The model's vocabulary holds the built-in language's words.
vocab=$("$bin/megatron-corpus" | awk '/^built-in language:/ {print $3}')

set -x
"$bin/megatron-model" --num-layers 3 --hidden-size 128 --num-attention-heads 4 --seq-length 64 \
  --vocab-size "$vocab" --micro-batch-size 16 --attention-dropout 0 --hidden-dropout 0 -o "$out/gpt.mlir"
"$bin/megatron-opt" "$out/gpt.mlir" --mt-report --mt-autodiff --mt-plan=output="$out/gpt.plan" \
  -o "$out/gpt.train.mlir"
"$bin/megatron-run" --plan "$out/gpt.plan" --train-iters 300 --lr 3e-3 --min-lr 3e-4 --lr-warmup-iters 30 \
  --lr-decay-style cosine --log-interval 25 --eval-interval 100 --eval-iters 4 \
  --save "$out/checkpoints" --save-interval 100 --loss-curve "$out/loss.svg" --loss-log "$out/loss.csv" \
  --generate 3 --top-k 20
