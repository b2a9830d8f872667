#!/usr/bin/env bash
# The main job on the built-in default: train a small GPT on the CPU on the project's own synthetic language
# (docs/data.md), taken through Megatron's data path like any corpus, then show the loss curve and a few generated
# samples. About 30 seconds on 2 cores after the first build.
#
#   megatron-corpus      writes the built-in language's documents as JSON lines, and its exact entropy rate
#   megatron-train-bpe   learns a 512-token byte-level BPE vocabulary from them (GPT-2's file formats)
#   megatron-preprocess  tokenizes them into Megatron's .bin/.idx indexed dataset
#   megatron-model       writes the model in the mt dialect from Megatron-LM's flags;
#   megatron-opt         reports its cost, differentiates it and compiles the training step into a plan;
#   megatron-run         samples the dataset as Megatron's GPTDataset does, trains the plan, saves checkpoints,
#                        draws the loss curve and samples text.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/bin"

"$root/scripts/build.sh" >/dev/null
out="$build/quickstart"
rm -rf "$out/checkpoints" "$out/cache"
mkdir -p "$out"

set -x
"$bin/megatron-corpus" --jsonl "$out/corpus.jsonl" --documents 10000
"$bin/megatron-train-bpe" --input "$out/corpus.jsonl" --vocab-size 512 --output-prefix "$out/bpe"
"$bin/megatron-preprocess" --input "$out/corpus.jsonl" --output-prefix "$out/corpus" \
  --tokenizer-type GPT2BPETokenizer --vocab-file "$out/bpe-vocab.json" --merge-file "$out/bpe-merges.txt" --append-eod
# The lowest loss any model can reach on these tokens: the language's exact entropy rate per BPE token.
floor=$("$bin/megatron-corpus" --vocab-file "$out/bpe-vocab.json" --merge-file "$out/bpe-merges.txt" |
  sed -n 's/.*entropy rate \([0-9.]*\) nats\/token (exact; a lower bound.*/\1/p')
"$bin/megatron-model" --num-layers 3 --hidden-size 128 --num-attention-heads 4 --seq-length 64 \
  --vocab-size 512 --micro-batch-size 16 --attention-dropout 0 --hidden-dropout 0 -o "$out/gpt.mlir"
"$bin/megatron-opt" "$out/gpt.mlir" --mt-report --mt-autodiff --mt-plan=output="$out/gpt.plan" \
  -o "$out/gpt.train.mlir"
"$bin/megatron-run" --plan "$out/gpt.plan" --data-path "$out/corpus_text_document" --split 969,30,1 \
  --vocab-file "$out/bpe-vocab.json" --merge-file "$out/bpe-merges.txt" --loss-floor "$floor" \
  --data-cache-path "$out/cache" --train-iters 300 --lr 3e-3 --min-lr 3e-4 --lr-warmup-iters 30 \
  --lr-decay-style cosine --log-interval 25 --eval-interval 100 --eval-iters 4 \
  --save "$out/checkpoints" --save-interval 100 --loss-curve "$out/loss.svg" --loss-log "$out/loss.csv" \
  --generate 3 --top-k 20
