#!/bin/bash
# Parity with PyTorch (docs/parity.md): compiles small models, dumps one train_step's loss and gradients with
# megatron-parity-dump, and checks them against PyTorch's autograd (torch_reference.py, Debian's python3-torch)
# on the same weights and batch.
#
#   run-parity.sh BIN_DIR WORK_DIR [MODEL...]      MODEL: a name below, or NAME='megatron-model flags'
#
# Environment: MEGATRON_PARITY_PYTHON (default /usr/bin/python3), MEGATRON_PARITY_FLAGS (extra flags of
# torch_reference.py, e.g. --quiet), MEGATRON_PARITY_DUMP_FLAGS (of megatron-parity-dump, e.g. --seed 7).
# Exit status: 0 every model passes, 1 one fails, 77 (ctest's SKIP_RETURN_CODE) when the Python has no torch.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BIN_DIR WORK_DIR [MODEL...]" >&2
  exit 2
fi
bin=$1
work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
python=${MEGATRON_PARITY_PYTHON:-/usr/bin/python3}

if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIPPED: $python cannot import torch and numpy (Debian: apt-get install python3-torch python3-numpy);" \
       "the parity test needs PyTorch as its reference."
  exit 77
fi

# No dropout: the reference cannot draw our masks.
common="--attention-dropout 0 --hidden-dropout 0"
small="--num-layers 2 --hidden-size 64 --seq-length 32 --micro-batch-size 2 --vocab-size 200"
declare -A models=(
  # GPT-2 style: LayerNorm, GeLU (tanh), learned positions, biases, tied output layer.
  [gpt]="$small --num-attention-heads 4"
  # LLaMA style: RMSNorm, SwiGLU, RoPE, GQA (8 heads in 2 groups), untied, no biases.
  [llama]="$small --num-attention-heads 8 --group-query-attention --num-query-groups 2 --normalization RMSNorm
           --swiglu --position-embedding-type rope --untie-embeddings-and-output-weights --disable-bias-linear"
  # Multi-query attention with RoPE on half of each head's channels, LayerNorm, GeLU, biases.
  [mqa]="$small --num-attention-heads 4 --group-query-attention --num-query-groups 1
         --position-embedding-type rope --rotary-percent 0.5"
  # BERT: padding mask, token types, LM head, pooler and sentence-order head, unmasked cross-entropy.
  [bert]="--model bert $small --num-attention-heads 4"
  # T5: relative position buckets, encoder padding, cross-attention (split_kv), decoder of another length.
  [t5]="--model t5 $small --num-attention-heads 4 --decoder-seq-length 16 --position-embedding-type relative"
)

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(gpt llama mqa bert t5)
fi

mkdir -p "$work"
pairs=()
for entry in "${names[@]}"; do
  if [[ $entry == *=* ]]; then
    name=${entry%%=*}
    flags=${entry#*=}
  else
    name=$entry
    flags=${models[$name]:-}
    if [ -z "$flags" ]; then
      echo "unknown model '$name' (known: ${!models[*]})" >&2
      exit 2
    fi
  fi
  echo "=== $name: megatron-model $(echo $flags) $common"
  # shellcheck disable=SC2086
  "$bin/megatron-model" $flags $common -o "$work/$name.mlir"
  "$bin/megatron-opt" --mt-autodiff --mt-plan=output="$work/$name.plan" "$work/$name.mlir" -o /dev/null >/dev/null
  rm -rf "$work/$name.dump"
  # shellcheck disable=SC2086
  "$bin/megatron-parity-dump" "$work/$name.plan" "$work/$name.dump" ${MEGATRON_PARITY_DUMP_FLAGS:-}
  pairs+=("$work/$name.plan" "$work/$name.dump")
done
echo
# One Python for every model: importing torch is most of the time.
# shellcheck disable=SC2086
exec "$python" "$here/torch_reference.py" "${pairs[@]}" ${MEGATRON_PARITY_FLAGS:-}
