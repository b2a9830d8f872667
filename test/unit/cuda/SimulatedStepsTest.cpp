//===- SimulatedStepsTest.cpp - Every generated kernel of the test models against the CPU engine ---===//
//
// The numerics test of the CUDA code generator without a GPU: every generated step of the test models
// (ModelStepChecks.h: the GPT; the LLaMA-style model in f32, bf16 and f16; BERT and T5; all sharded over two
// tensor-parallel ranks, every rank; the GPT of odd shapes) runs in the host simulator before the CPU engine runs
// it, on the same inputs, and every output must match the CPU's (StepChecker.h). GpuStepsTest runs the same checks
// on a GPU.
//
//===----------------------------------------------------------------------===//

#include "ModelStepChecks.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "sim/Simulator.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <cstdio>

using namespace megatron;

namespace {

/// How far a simulated output may be from the CPU's, relative to the output's scale (its largest |value|). Both
/// backends compute in f32 (f64 for f64 buffers), without contracting multiply-adds (the simulator's kernels are
/// compiled with -ffp-contract=off); they differ in the order of reductions (warp trees against the CPU's 16
/// lanes) and in exp/tanh/erf (the host's libm in the simulator, polynomials within ~5e-7 on the CPU), so an f32
/// result differs by a few f32 roundings of the largest terms: 1e-5 (measured at most 7.9e-7, docs/cuda.md). A
/// 16-bit output rounds such an f32 result once, so it may land one unit of the format away.
constexpr test::StepTolerances kSimulatorSteps{/*f32=*/1e-5, /*f64=*/1e-12, /*sixteenBitUlps=*/1};

std::string checkOnSimulator(const char *name, const plan::Plan &plan, double lossScale,
                             const std::function<void(runtime::Engine &)> &alter = nullptr) {
  return test::checkPlanSteps(name, plan, lossScale, test::newSimulatedBackend, kSimulatorSteps, alter);
}

class CudaSimulatedModelSteps : public ::testing::TestWithParam<test::StepCheckModel> {};

TEST_P(CudaSimulatedModelSteps, MatchTheCpuEngine) {
  EXPECT_EQ(test::checkModelSteps(GetParam(), test::newSimulatedBackend, kSimulatorSteps), "");
}

INSTANTIATE_TEST_SUITE_P(EveryTestModel, CudaSimulatedModelSteps, ::testing::ValuesIn(test::stepCheckModels()),
                         [](const ::testing::TestParamInfo<test::StepCheckModel> &info) { return info.param.id; });

/// Element `i` of the plan input `name`, as int32 or float storage.
template <typename T> T &inputAt(runtime::Engine &engine, const char *name, int64_t i) {
  for (const plan::Input &input : engine.plan().inputs)
    if (input.name == name)
      return engine.as<T>(input.buffer)[i];
  ADD_FAILURE() << "the plan has no input " << name;
  static T none;
  return none;
}

/// Generated steps of `plan` that carry the attribute `name`.
int generatedStepsWith(const plan::Plan &plan, const char *name) {
  int count = 0;
  for (const codegen::StepPlan &step : codegen::generateKernels(plan).steps)
    if (step.backend == codegen::StepBackend::Generated &&
        plan.program(step.ref.program)->steps[size_t(step.ref.step)].attrs.count(name))
      ++count;
  return count;
}

TEST(CudaSimulatedSteps, ShardedModelsReachEveryStepThatReadsTheRank) {
  // The sharded models of stepCheckModels() must reach every kind of step that reads the rank.
  for (const char *attribute : {"vocab_shard", "vocab_parallel", "sequence_shard", "shard_dim"})
    EXPECT_GT(generatedStepsWith(test::shardedGptPlan(), attribute), 0) << attribute;
  for (const plan::Plan *plan : {&test::bertPlan(2), &test::t5Plan(2)})
    EXPECT_GT(generatedStepsWith(*plan, "dim"), 0) << "shard_slice steps";
}

TEST(CudaSimulatedSteps, BadIdsAreReportedAtTheCpusPosition) {
  // Two bad token ids: the simulated kernels' status word holds the first position, as the CPU's error says,
  // and the step fails with the CPU's message.
  std::string error = checkOnSimulator(nullptr, test::gptPlan(), 1.0, [](runtime::Engine &engine) {
    inputAt<int32_t>(engine, "tokens", 50) = -1;
    inputAt<int32_t>(engine, "tokens", 37) = 1 << 20;
  });
  EXPECT_NE(error.find("token id 1048576 at position 37"), std::string::npos) << error;
  // A label outside the logits where the loss mask reads it fails at its row; -1 under a zero mask (BERT's
  // padding) is valid on both backends.
  error = checkOnSimulator(nullptr, test::gptPlan(), 1.0, [](runtime::Engine &engine) {
    inputAt<int32_t>(engine, "labels", 10) = -1;
    inputAt<float>(engine, "loss_mask", 10) = 0.0f;
    inputAt<int32_t>(engine, "labels", 20) = 100000;
    inputAt<float>(engine, "loss_mask", 20) = 1.0f;
  });
  EXPECT_NE(error.find("label 100000 at position 20"), std::string::npos) << error;
  EXPECT_EQ(checkOnSimulator(nullptr, test::gptPlan(), 1.0, [](runtime::Engine &engine) {
              inputAt<int32_t>(engine, "labels", 10) = -1;
              inputAt<float>(engine, "loss_mask", 10) = 0.0f;
            }),
            "");
}

TEST(CudaSimulatedSteps, KernelsCompileOnceAndReport) {
  test::SimulatedKernels &kernels = test::simulatedKernels();
  ASSERT_EQ(kernels.error, "");
  const cudasim::Counters counters = cudasim::counters();
  std::printf("%d kernels compiled for the simulator, %d from the cache, in %.1f s; %lld launches, %lld simulated "
              "threads, %lld switches so far\n",
              kernels.library.compiled(), kernels.library.cached(), kernels.seconds, counters.launches,
              counters.threads, counters.switches);
  EXPECT_GT(kernels.library.compiled() + kernels.library.cached(), 40);
}

} // namespace
