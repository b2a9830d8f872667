//===- SimulatedStepsTest.cpp - Every generated kernel of the test models against the CPU engine ---===//
//
// The numerics test of the CUDA code generator without a GPU. For each test model (the GPT; the LLaMA-style
// model in f32, bf16 and f16; both sharded over two tensor-parallel ranks, every rank) the CPU engine runs two micro-batches of train_step (the second accumulating into
// the gradients the first left) and then the evaluation programs, one step at a time; before every step that the
// generator implements, the step's kernels run in the host simulator on the same inputs, and every output must
// match the CPU's (sim/StepChecker.h: f32 to 1e-5 of the output's scale, 16-bit to one unit of the format).
//
//===----------------------------------------------------------------------===//

#include "RandomFill.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "sim/Simulator.h"
#include "sim/StepChecker.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>

using namespace megatron;

namespace {

void printSummary(const char *model, const cudasim::StepChecker &checker) {
  std::printf("%s: %d generated steps checked against the CPU engine\n", model, checker.stepsChecked());
  std::printf("  %-26s %-5s %6s %14s %5s\n", "op", "dtype", "steps", "worst rel diff", "ulps");
  for (const auto &[key, summary] : checker.summary())
    std::printf("  %-26s %-5s %6d %14.3g %5d\n", key.first.c_str(), plan::toString(key.second), summary.steps,
                summary.worstRelative, summary.worstUlps);
}

/// Runs the engine's programs step by step through the checker: two micro-batches of train_step, the second
/// accumulating into the gradients the first left, then every other program as an evaluation. Returns the first
/// failure; prints the differences when `name` is given. `alter` may change the random data first.
std::string checkEngine(runtime::Engine &engine, double lossScale, const char *name,
                        const std::function<void(runtime::Engine &)> &alter = nullptr) {
  test::SimulatedKernels &kernels = test::simulatedKernels();
  if (!kernels.error.empty())
    return kernels.error;
  test::fillRandomly(engine, 42);
  if (alter)
    alter(engine);
  codegen::KernelSet set = codegen::generateKernels(engine.plan());
  cudasim::StepChecker checker(engine, set, kernels.library);

  auto runProgram = [&](const std::string &program, const runtime::RunContext &context) -> std::string {
    for (size_t j = 0; j < engine.plan().program(program)->steps.size(); ++j)
      if (std::string failure = checker.runStep(program, j, context); !failure.empty())
        return failure;
    return {};
  };
  engine.zero(plan::Arena::Grads);
  for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
    runtime::RunContext context;
    context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, microBatch);
    context.lossScale = lossScale;
    if (std::string failure = runProgram("train_step", context); !failure.empty())
      return failure;
  }
  for (const plan::Program &program : engine.plan().programs)
    if (program.name != "train_step") {
      runtime::RunContext evaluation;
      evaluation.training = false;
      if (std::string failure = runProgram(program.name, evaluation); !failure.empty())
        return failure;
    }
  if (name)
    printSummary(name, checker);
  return {};
}

std::string checkModel(const char *name, const plan::Plan &plan, double lossScale,
                       const std::function<void(runtime::Engine &)> &alter = nullptr) {
  std::string error;
  std::unique_ptr<runtime::Engine> engine = runtime::Engine::create(plan, error);
  return engine ? checkEngine(*engine, lossScale, name, alter) : error;
}

/// Element `i` of the plan input `name`, as int32 or float storage.
template <typename T> T &inputAt(runtime::Engine &engine, const char *name, int64_t i) {
  for (const plan::Input &input : engine.plan().inputs)
    if (input.name == name)
      return engine.as<T>(input.buffer)[i];
  ADD_FAILURE() << "the plan has no input " << name;
  static T none;
  return none;
}

/// Every rank of a tensor-parallel plan, as threads joined by the thread communicator (the CPU engine's
/// collectives need their peers); the simulator serialises the ranks' launches.
std::string checkShardedModel(const char *name, const plan::Plan &plan) {
  return comm::runRanks(int(plan.parallel.tensor), [&](int rank, comm::Communicator &world) -> std::string {
    cpu::setNumThreads(1);
    std::string failure;
    std::unique_ptr<comm::Communicator> tp = world.split(0, rank, "tp", failure);
    if (!tp)
      return failure;
    std::unique_ptr<runtime::Engine> engine = runtime::Engine::create(plan, failure, tp.get());
    if (!engine)
      return failure;
    const std::string label = std::string(name) + ", rank " + std::to_string(rank);
    return checkEngine(*engine, 1.0, label.c_str());
  });
}

TEST(CudaSimulatedSteps, GptMatchesTheCpuEngine) { EXPECT_EQ(checkModel("gpt f32", test::gptPlan(), 1.0), ""); }

TEST(CudaSimulatedSteps, LlamaMatchesTheCpuEngine) {
  EXPECT_EQ(checkModel("llama f32", test::llamaPlan(), 1.0), "");
}

TEST(CudaSimulatedSteps, LlamaBf16MatchesTheCpuEngine) {
  EXPECT_EQ(checkModel("llama bf16", test::llamaPlan(plan::DType::BF16), 1.0), "");
}

TEST(CudaSimulatedSteps, LlamaF16WithALossScaleMatchesTheCpuEngine) {
  // fp16's loss scale reaches the kernels as the loss seed's run-time argument.
  EXPECT_EQ(checkModel("llama f16", test::llamaPlan(plan::DType::F16), 1024.0), "");
}

TEST(CudaSimulatedSteps, BertMatchesTheCpuEngine) {
  EXPECT_EQ(checkModel("bert f32", test::bertPlan(), 1.0), "");
}

TEST(CudaSimulatedSteps, T5MatchesTheCpuEngine) { EXPECT_EQ(checkModel("t5 f32", test::t5Plan(), 1.0), ""); }

/// Generated steps of `plan` that carry the attribute `name`: the sharded tests must reach every kind of step
/// that reads the rank.
int generatedStepsWith(const plan::Plan &plan, const char *name) {
  int count = 0;
  for (const codegen::StepPlan &step : codegen::generateKernels(plan).steps)
    if (step.backend == codegen::StepBackend::Generated &&
        plan.program(step.ref.program)->steps[size_t(step.ref.step)].attrs.count(name))
      ++count;
  return count;
}

TEST(CudaSimulatedSteps, ShardedGptMatchesTheCpuEngineOnEveryRank) {
  for (const char *attribute : {"vocab_shard", "vocab_parallel", "sequence_shard", "shard_dim"})
    EXPECT_GT(generatedStepsWith(test::shardedGptPlan(), attribute), 0) << attribute;
  EXPECT_EQ(checkShardedModel("gpt f32, tp 2 + sequence parallel", test::shardedGptPlan()), "");
}

TEST(CudaSimulatedSteps, ShardedLlamaMatchesTheCpuEngineOnEveryRank) {
  EXPECT_EQ(checkShardedModel("llama f32, tp 2", test::shardedLlamaPlan()), "");
}

TEST(CudaSimulatedSteps, ShardedBertAndT5MatchTheCpuEngineOnEveryRank) {
  for (const plan::Plan *plan : {&test::bertPlan(2), &test::t5Plan(2)})
    EXPECT_GT(generatedStepsWith(*plan, "dim"), 0) << "shard_slice steps";
  EXPECT_EQ(checkShardedModel("bert f32, tp 2 + sequence parallel", test::bertPlan(2)), "");
  EXPECT_EQ(checkShardedModel("t5 f32, tp 2", test::t5Plan(2)), "");
}

TEST(CudaSimulatedSteps, OddShapesMatchTheCpuEngine) {
  EXPECT_EQ(checkModel("odd gpt f32", test::oddGptPlan(1), 1.0), "");
  EXPECT_EQ(checkShardedModel("odd gpt f32, tp 2 + sequence parallel", test::oddGptPlan(2)), "");
}

TEST(CudaSimulatedSteps, BadIdsAreReportedAtTheCpusPosition) {
  // Two bad token ids: the simulated kernels' status word holds the first position, as the CPU's error says,
  // and the step fails with the CPU's message.
  std::string error = checkModel(nullptr, test::gptPlan(), 1.0, [](runtime::Engine &engine) {
    inputAt<int32_t>(engine, "tokens", 50) = -1;
    inputAt<int32_t>(engine, "tokens", 37) = 1 << 20;
  });
  EXPECT_NE(error.find("token id 1048576 at position 37"), std::string::npos) << error;
  // A label outside the logits where the loss mask reads it fails at its row; -1 under a zero mask (BERT's
  // padding) is valid on both backends.
  error = checkModel(nullptr, test::gptPlan(), 1.0, [](runtime::Engine &engine) {
    inputAt<int32_t>(engine, "labels", 10) = -1;
    inputAt<float>(engine, "loss_mask", 10) = 0.0f;
    inputAt<int32_t>(engine, "labels", 20) = 100000;
    inputAt<float>(engine, "loss_mask", 20) = 1.0f;
  });
  EXPECT_NE(error.find("label 100000 at position 20"), std::string::npos) << error;
  EXPECT_EQ(checkModel(nullptr, test::gptPlan(), 1.0, [](runtime::Engine &engine) {
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
