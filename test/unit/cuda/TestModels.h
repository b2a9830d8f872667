//===- TestModels.h - The plans of the CUDA tests' two models ----*- C++ -*-===//
//
// Compiled through the real pipeline (megatron-model's builder, mt-autodiff, the plan builder): a GPT with
// LayerNorm, GeLU, learned positions and dropout, and a LLaMA-style model with RMSNorm, SwiGLU, RoPE and grouped
// queries. Small shapes: the generated kernels specialise on them, but their code paths are the large models'.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H
#define MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H

#include "megatron/Plan/Plan.h"

namespace megatron::test {

const plan::Plan &gptPlan();
const plan::Plan &llamaPlan();

/// The plan with every floating-point buffer but the parameters' f32 gradients and AdamW moments stored as `type`
/// (what mixed precision makes of activations and weights), for the bf16 and f16 kernels.
plan::Plan withStorage(plan::Plan plan, plan::DType type);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H
