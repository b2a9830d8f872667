//===- RandomFill.cpp - Random parameters and inputs for the CUDA tests' engines ---===//

#include "RandomFill.h"

#include <algorithm>
#include <climits>
#include <random>

namespace megatron::test {

namespace {

/// What an int32 input may hold: below the rows of the embedding table it indexes, or below the logits' width it
/// labels; a padding mask 0 or 1.
int64_t indexLimit(const plan::Plan &plan, int buffer) {
  int64_t limit = INT32_MAX;
  for (const plan::Program &program : plan.programs)
    for (const plan::Step &step : program.steps)
      for (size_t i = 0; i < step.inputs.size(); ++i) {
        if (step.inputs[i] != buffer)
          continue;
        if (step.op == "embedding" && i == 0)
          limit = std::min(limit, plan.buffers[size_t(step.inputs[1])].shape[0]);
        else if (step.op == "cross_entropy" && i == 1)
          limit = std::min(limit, plan.buffers[size_t(step.inputs[0])].shape.back());
        else if (step.op == "attention" || step.op == "attention_grad")
          limit = std::min<int64_t>(limit, 2);
      }
  return limit;
}

void fillInputs(runtime::Engine &engine, std::mt19937_64 &rng) {
  const plan::Plan &plan = engine.plan();
  for (const plan::Input &input : plan.inputs) {
    const plan::Buffer &b = engine.buffer(input.buffer);
    const int64_t limit = indexLimit(plan, input.buffer);
    for (int64_t i = 0; i < b.numElements(); ++i) {
      if (b.dtype != plan::DType::I32)
        engine.as<float>(input.buffer)[i] = rng() % 5 == 0 ? 0.0f : 1.0f;
      else if (limit == 2) // a padding mask: sequence r keeps its first seq - r % 4 positions
        engine.as<int32_t>(input.buffer)[i] = i % b.shape.back() < b.shape.back() - (i / b.shape.back()) % 4;
      else
        engine.as<int32_t>(input.buffer)[i] = int32_t(rng() % uint64_t(limit));
    }
  }
}

} // namespace

void fillRandomly(runtime::Engine &engine, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const plan::Plan &plan = engine.plan();
  for (const plan::Param &p : plan.params) {
    float *value = engine.as<float>(p.buffer);
    for (int64_t i = 0; i < engine.buffer(p.buffer).numElements(); ++i)
      value[i] = p.init == plan::InitKind::Ones    ? 1.0f + 0.1f * normal(rng)
                 : p.init == plan::InitKind::Zeros ? 0.02f * normal(rng)
                                                   : float(p.initStd) * normal(rng);
  }
  fillInputs(engine, rng);
}

void fillInputs(runtime::Engine &engine, uint64_t seed) {
  std::mt19937_64 rng(seed);
  fillInputs(engine, rng);
}

} // namespace megatron::test
