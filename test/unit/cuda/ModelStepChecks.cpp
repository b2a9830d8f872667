//===- ModelStepChecks.cpp - Every generated step of the test models against the CPU engine ---===//

#include "ModelStepChecks.h"

#include "RandomFill.h"
#include "TestPlans.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cpu/Kernels.h"

#include <cstdio>
#include <mutex>

namespace megatron::test {

namespace {

void printSummary(const char *name, const StepChecker &checker, bool failed) {
  static std::mutex printing; // the ranks of a sharded model finish on their own threads
  std::lock_guard<std::mutex> lock(printing);
  std::printf("%s: %d generated steps checked against the CPU engine%s\n", name, checker.stepsChecked(),
              failed ? " before the first failure" : "");
  std::printf("  %-26s %-5s %6s %14s %5s\n", "op", "dtype", "steps", "worst rel diff", "ulps");
  for (const auto &[key, summary] : checker.summary())
    std::printf("  %-26s %-5s %6d %14.3g %5d\n", key.first.c_str(), plan::toString(key.second), summary.steps,
                summary.worstRelative, summary.worstUlps);
  std::fflush(stdout);
}

std::string runProgram(StepChecker &checker, const runtime::Engine &engine, const std::string &program,
                       const runtime::RunContext &context) {
  for (size_t j = 0; j < engine.plan().program(program)->steps.size(); ++j)
    if (std::string failure = checker.runStep(program, j, context); !failure.empty())
      return failure;
  return {};
}

/// Two micro-batches of train_step, then every other program as an evaluation.
std::string runPrograms(StepChecker &checker, runtime::Engine &engine, double lossScale) {
  engine.zero(plan::Arena::Grads);
  if (std::string error = engine.refreshWeights(); !error.empty()) // the checker uploads them before each step
    return error;
  for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
    runtime::RunContext context;
    context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, microBatch);
    context.lossScale = lossScale;
    if (std::string failure = runProgram(checker, engine, "train_step", context); !failure.empty())
      return failure;
  }
  for (const plan::Program &program : engine.plan().programs)
    if (program.name != "train_step") {
      runtime::RunContext evaluation;
      evaluation.training = false;
      if (std::string failure = runProgram(checker, engine, program.name, evaluation); !failure.empty())
        return failure;
    }
  return {};
}

std::string checkEngine(runtime::Engine &engine, const codegen::KernelSet &kernels, device::DeviceBackend &backend,
                        const StepTolerances &tolerances, double lossScale, const char *name,
                        const std::function<void(runtime::Engine &)> &alter) {
  fillRandomly(engine, 42);
  if (alter)
    alter(engine);
  std::string error;
  std::unique_ptr<StepChecker> checker = StepChecker::create(engine, kernels, backend, tolerances, error);
  if (!checker)
    return error;
  const std::string failure = runPrograms(*checker, engine, lossScale);
  if (name)
    printSummary(name, *checker, !failure.empty());
  return failure;
}

} // namespace

const std::vector<StepCheckModel> &stepCheckModels() {
  static const std::vector<StepCheckModel> models = {
      {"gpt f32", "GptF32", "gpt", 1.0},
      {"gpt bf16", "GptBf16", "gpt-bf16", 1.0},
      {"llama f32", "LlamaF32", "llama", 1.0},
      {"llama bf16", "LlamaBf16", "llama-bf16", 1.0},
      {"llama f16", "LlamaF16WithALossScale", "llama-f16", 1024.0},
      {"bert f32", "BertF32", "bert", 1.0},
      {"t5 f32", "T5F32", "t5", 1.0},
      {"gpt f32, tp 2 + sequence parallel", "ShardedGptF32", "gpt-tp2", 1.0},
      {"llama f32, tp 2", "ShardedLlamaF32", "llama-tp2", 1.0},
      {"bert f32, tp 2 + sequence parallel", "ShardedBertF32", "bert-tp2", 1.0},
      {"t5 f32, tp 2", "ShardedT5F32", "t5-tp2", 1.0},
      {"odd gpt f32", "OddGptF32", "odd-gpt", 1.0},
      {"odd gpt f32, tp 2 + sequence parallel", "ShardedOddGptF32", "odd-gpt-tp2", 1.0},
  };
  return models;
}

std::string checkModelSteps(const StepCheckModel &model, const BackendFactory &newBackend,
                            const StepTolerances &tolerances) {
  std::string error;
  const plan::Plan *plan = testPlan(model.plan, error);
  return plan ? checkPlanSteps(model.name, *plan, model.lossScale, newBackend, tolerances) : error;
}

std::string checkPlanSteps(const char *name, const plan::Plan &plan, double lossScale,
                           const BackendFactory &newBackend, const StepTolerances &tolerances,
                           const std::function<void(runtime::Engine &)> &alter) {
  const int ranks = int(plan.parallel.tensor);
  const codegen::KernelSet kernels = codegen::generateKernels(plan);
  // Every rank's backend made and its kernels prepared here, before the rank threads start.
  std::vector<std::unique_ptr<device::DeviceBackend>> backends;
  for (int rank = 0; rank < ranks; ++rank) {
    std::string error;
    backends.push_back(newBackend(error));
    if (!backends.back())
      return error;
    if (error = backends.back()->prepare(kernels.kernels); !error.empty())
      return "preparing the kernels on " + backends.back()->describe() + ": " + error;
  }
  if (ranks == 1) {
    std::string error;
    std::unique_ptr<runtime::Engine> engine = runtime::Engine::create(plan, error);
    return engine ? checkEngine(*engine, kernels, *backends[0], tolerances, lossScale, name, alter) : error;
  }
  return comm::runRanks(ranks, [&](int rank, comm::Communicator &world) -> std::string {
    cpu::setNumThreads(1);
    std::string failure;
    std::unique_ptr<comm::Communicator> tp = world.split(0, rank, "tp", failure);
    if (!tp)
      return failure;
    std::unique_ptr<runtime::Engine> engine = runtime::Engine::create(plan, failure, tp.get());
    if (!engine)
      return failure;
    const std::string label = name ? std::string(name) + ", rank " + std::to_string(rank) : std::string();
    return checkEngine(*engine, kernels, *backends[size_t(rank)], tolerances, lossScale,
                       name ? label.c_str() : nullptr, alter);
  });
}

} // namespace megatron::test
