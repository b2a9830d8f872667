//===- TestModels.h - The plans of the CUDA tests' two models ----*- C++ -*-===//
//
// Compiled through the real pipeline (megatron-model's builder, mt-autodiff, the plan builder): a GPT with
// LayerNorm, GeLU, learned positions and dropout, and a LLaMA-style model with RMSNorm, SwiGLU, RoPE and grouped
// queries. Small shapes: the generated kernels specialise on them, but their code paths are the large models'.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H
#define MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H

#include "megatron/Model/ModelConfig.h"
#include "megatron/Plan/Plan.h"

#include <vector>

namespace megatron::test {

/// `config` compiled as the plans below are, on one rank, with --mt-mixed-precision=`precision` unless it is empty
/// ("bf16", "fp16"): for a test that needs a model of its own shape.
plan::Plan compileModel(ModelConfig config, const char *precision = "");

/// A layout of --mt-shard (tensor x data ranks, sequence parallelism, the distributed optimizer) and
/// --mt-pipeline (stages, and model chunks per stage: interleaved 1F1B when virtualStages > 1).
struct ParallelLayout {
  int64_t tensor = 1;
  bool sequence = false;
  int64_t data = 1;
  bool distributedOptimizer = false;
  int64_t stages = 1;
  const char *precision = ""; ///< --mt-mixed-precision's dtype ("bf16", "fp16"), or f32
  int64_t virtualStages = 1;
};

/// `config` compiled for `layout` (in its precision): one rank's plan per pipeline stage, for a test that needs a
/// parallel model of its own shape.
std::vector<plan::Plan> compileParallelModel(ModelConfig config, const ParallelLayout &layout);

const plan::Plan &gptPlan();
/// The GPT compiled with --mt-mixed-precision for bf16 compute and --mt-fuse-elementwise, with its dropout (f32:
/// gptPlan()): the tensor-core attention's dropout path, the fused dropout_add, and the MLP's GeLU fused into the
/// GEMMs (linear_gelu, linear_grad_input_gelu: cuBLASLt's GeLU epilogues).
const plan::Plan &gptPlan(plan::DType compute);
const plan::Plan &llamaPlan();

/// The LLaMA-style plan compiled with --mt-mixed-precision for bf16 or f16 compute (f32: llamaPlan()).
const plan::Plan &llamaPlan(plan::DType compute);

/// A BERT (padding mask, token types, pooler, sentence order) and a T5 with relative position bias (encoder and
/// decoder, cross-attention with fewer queries than keys), on one rank, or one rank's plan of two (BERT with
/// sequence parallelism; both take shard_slice steps).
const plan::Plan &bertPlan(int64_t tensor = 1);
const plan::Plan &t5Plan(int64_t tensor = 1);

/// One rank's plan of the two models sharded over 2 tensor-parallel ranks (--mt-shard), the GPT with sequence
/// parallelism: the steps that take the rank (vocab_shard, vocab_parallel, sequence_shard, shard_dim).
const plan::Plan &shardedGptPlan();
const plan::Plan &shardedLlamaPlan();

/// A GPT of awkward shapes: hidden 30 (rows narrower than a block of 32), 2 heads of 15, sequence 6, batch 3,
/// vocabulary 101 (padded only to a multiple of the ranks), on one rank or two with sequence parallelism (then a
/// dropout shard's runs are 90 elements, not a multiple of four).
const plan::Plan &oddGptPlan(int64_t tensor);

/// One rank's plan of the GPT over `tensor` tensor-parallel ranks (with sequence parallelism when tensor > 1) and
/// `data` replicas (whose finalize_grads sums the gradients over the "dp" group), two micro-batches per replica,
/// in f32 or with bf16 or f16 compute (--mt-mixed-precision).
const plan::Plan &parallelGptPlan(int64_t tensor, int64_t data, plan::DType compute = plan::DType::F32);

/// The GPT split into `stages` pipeline stages (--mt-pipeline), one plan per stage, with two micro-batches per
/// iteration; the first and last stages share the tied embedding.
const std::vector<plan::Plan> &pipelineGptPlans(int64_t stages);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H
