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

/// The LLaMA-style plan compiled with --mt-mixed-precision for bf16 or f16 compute (f32: llamaPlan()).
const plan::Plan &llamaPlan(plan::DType compute);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_TESTMODELS_H
