#!/usr/bin/env bash
# The main job on the built-in default: describe a GPT-2 small with Megatron-LM's flags, compile it with
# megatron-opt and print what it costs. (Training on the CPU arrives with the runtime.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

"$root/scripts/build.sh" >/dev/null
out="$build/quickstart"
mkdir -p "$out"

set -x
"$build/bin/megatron-model" --preset gpt2-small --micro-batch-size 8 --global-batch-size 64 -o "$out/gpt2-small.mlir"
"$build/bin/megatron-opt" "$out/gpt2-small.mlir" --mt-report -o "$out/gpt2-small.opt.mlir"
