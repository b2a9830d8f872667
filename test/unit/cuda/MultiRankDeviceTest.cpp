//===- MultiRankDeviceTest.cpp - Parallel plans on device engines sharing one device ---===//
//
// Tensor and data parallelism on the device engine, tested on one (simulated) device: every rank is a thread
// with its own DeviceEngine and stream, its groups split off a same-device world (SameDeviceCommunicator.h), and
// next to it the CPU engine of the same plan and rank with its groups split off a thread world. Both start from
// the same parameters and inputs and run two micro-batches of train_step and then finalize_grads; every rank's
// losses and gradients are compared. The collectives carry every difference between ranks (the all-reduces of
// the tensor-parallel layers, the sequence-parallel gathers and scatters, the vocabulary-parallel loss, the
// data-parallel gradient sums), so a collective bound wrongly shows as a wrong loss or gradient.
//
//===----------------------------------------------------------------------===//

#include "EngineValues.h"
#include "RandomFill.h"
#include "SharedSimulatedDevice.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "DeviceValues.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/DeviceOptimizer.h"
#include "runtime/device/SameDeviceCommunicator.h"
#include "runtime/engine/Engine.h"
#include "runtime/train/Shards.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <thread>

using namespace megatron;

using test::cpuValues;
using test::deviceValues;
using test::relativeDifference;
using test::upload;

namespace {

struct RankResult {
  std::vector<double> cpuLosses, deviceLosses;
  double worstGradient = 0;
  std::string worstParameter;
  int gradients = 0;
  std::vector<std::vector<double>> deviceGradients; // after finalize_grads, per parameter
  // With the optimizer step: the global gradient norms, and the parameters' mean |difference| over their mean
  // |value| afterwards (and the worst element).
  double cpuNorm = 0, deviceNorm = 0, parameterDifference = 0, worstParameterElement = 0;
};

/// The ranks of a tensor x data x pipeline layout, numbered as megatron-run numbers them: rank = (stage·data +
/// replica)·tensor + tpRank.
struct Layout {
  int tensor = 1, data = 1, stages = 1;
  int ranks() const { return tensor * data * stages; }
};


/// Runs `program` on both engines with the inputs of micro-batch `microBatch` of replica `replica`, and records
/// the loss where the program has one.
std::string runBoth(runtime::Engine &cpu, device::DeviceEngine &gpu, const std::string &program,
                    runtime::RunContext context, int replica, int64_t microBatch, RankResult &result) {
  const plan::Plan &plan = gpu.plan();
  test::fillInputs(cpu, 100 + 10 * uint64_t(replica) + uint64_t(microBatch)); // alike over a tp group
  for (const plan::Input &input : plan.inputs)
    if (std::string error = upload(cpu, gpu, input.buffer); !error.empty())
      return error;
  context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, 2 * replica + microBatch);
  if (std::string error = cpu.run(program, context); !error.empty())
    return "CPU engine: " + error;
  if (std::string error = gpu.run(program, context); !error.empty())
    return "device engine: " + error;
  if (plan.program(program)->loss < 0)
    return {};
  double loss = 0;
  if (std::string error = gpu.loss(program, loss); !error.empty())
    return error;
  result.cpuLosses.push_back(cpu.loss(program));
  result.deviceLosses.push_back(loss);
  return {};
}

/// Two micro-batches: train_step twice, or the stage's pipeline schedule (forward and backward halves of its
/// chunks, each micro-batch in a free stash slot from its forward to its backward, as megatron-run runs it).
std::string runMicroBatches(runtime::Engine &cpu, device::DeviceEngine &gpu, int replica, RankResult &result) {
  const plan::PipelineInfo &pipeline = gpu.plan().pipeline;
  if (pipeline.stages == 1) {
    for (int64_t microBatch = 0; microBatch < 2; ++microBatch)
      if (std::string error = runBoth(cpu, gpu, "train_step", {}, replica, microBatch, result); !error.empty())
        return error;
    return {};
  }
  plan::StashSlots slots(pipeline);
  for (const plan::PipelineStep &step : pipeline.schedule) {
    runtime::RunContext context;
    context.microBatch = step.microBatch;
    context.stashSlot = slots.acquire(step);
    if (context.stashSlot < 0)
      return "no stash slot";
    if (std::string error =
            runBoth(cpu, gpu, pipeline.trainingProgram(step), context, replica, step.microBatch, result);
        !error.empty())
      return error;
    if (!step.forward)
      slots.release(step);
  }
  return {};
}

/// --clip-grad of the optimizer step: below the test runs' norms, so that clipping takes part.
constexpr double kClip = 0.5;

/// The optimizer step after finalize_grads on both engines, with the global norm counted as megatron-run's
/// trainer counts it: every element of the whole model once (train::ownedRuns of the first replica), the ranks'
/// sums added over the tensor and data groups; clipping and AdamW. The CPU side is the trainer's arithmetic
/// (cpu::sumOfSquares, the thread communicators' all-reduces, cpu::scaleTensors, cpu::adamwStep).
std::string optimizerStep(runtime::Engine &cpu, device::DeviceEngine &gpu, device::DeviceBackend &backend,
                          int tpRank, int replica, const std::vector<comm::Communicator *> &cpuGroups,
                          const std::vector<comm::Communicator *> &deviceGroups, RankResult &result) {
  const plan::Plan &plan = gpu.plan();
  device::NormShare share;
  share.groups = deviceGroups;
  double squares = 0;
  std::vector<float *> grads;
  std::vector<cpu::Index> sizes;
  for (const plan::Param &p : plan.params) {
    const int64_t n = plan.buffers[size_t(p.grad)].numElements();
    share.runs.emplace_back();
    for (const train::ShardRun &run : train::ownedRuns(p, tpRank, n))
      if (replica == 0) { // the replicas hold the same sums: the first one counts them
        share.runs.back().push_back({run.local, run.length});
        squares += cpu::sumOfSquares<float>(run.length, cpu.as<float>(p.grad) + run.local);
      }
    grads.push_back(cpu.as<float>(p.grad));
    sizes.push_back(n);
  }
  for (comm::Communicator *group : cpuGroups)
    if (group)
      if (std::string error = group->allReduce(&squares, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
        return error;
  std::string error;
  std::unique_ptr<device::DeviceOptimizer> optimizer = device::DeviceOptimizer::create(gpu, backend, error, share);
  if (!optimizer)
    return error;
  for (const plan::Param &p : plan.params) // the moments start at zero on both
    for (int id : {p.expAvg, p.expAvgSq}) {
      std::fill_n(cpu.as<float>(id), cpu.buffer(id).numElements(), 0.0f);
      if (error = upload(cpu, gpu, id); !error.empty())
        return error;
    }
  const device::AdamWSettings adam{5e-3, 0.9, 0.999, 1e-8, 0.01, 1};
  result.cpuNorm = std::sqrt(squares);
  if (kClip / (result.cpuNorm + 1e-6) < 1.0)
    cpu::scaleTensors<float>(int(grads.size()), grads.data(), sizes.data(), float(kClip / (result.cpuNorm + 1e-6)));
  for (const plan::Param &p : plan.params)
    cpu::adamwStep<float>(cpu.buffer(p.buffer).numElements(),
                          cpu::AdamWConfig{adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weightDecay, adam.step},
                          p.weightDecay, cpu.as<float>(p.buffer), cpu.as<float>(p.grad), cpu.as<float>(p.expAvg),
                          cpu.as<float>(p.expAvgSq));
  if (error = optimizer->step(adam, kClip, result.deviceNorm); !error.empty())
    return error;
  // Compared on average, as the one-rank optimizer test does: AdamW divides by sqrt(v), so summation-order noise
  // in a ~0 gradient can move its element by up to 2·lr.
  double differenceSum = 0, valueSum = 0;
  for (const plan::Param &p : plan.params) {
    const std::vector<double> device = deviceValues(gpu, p.buffer, error), host = cpuValues(cpu, p.buffer);
    if (!error.empty())
      return error;
    for (size_t i = 0; i < host.size(); ++i) {
      differenceSum += std::fabs(device[i] - host[i]);
      valueSum += std::fabs(host[i]);
      result.worstParameterElement = std::max(result.worstParameterElement, std::fabs(device[i] - host[i]));
    }
  }
  result.parameterDifference = differenceSum / valueSum;
  return {};
}

/// One rank: its groups on both worlds, both engines, two micro-batches of train_step and finalize_grads (and
/// the optimizer step when `optimizer`).
std::string runRank(const plan::Plan &plan, Layout layout, int rank, comm::Communicator &cpuWorld,
                    comm::Communicator &deviceWorld, device::DeviceBackend &backend, const codegen::KernelSet &set,
                    bool optimizer, RankResult &result) {
  std::string error;
  const int tpRank = rank % layout.tensor, replica = rank / layout.tensor % layout.data,
            stage = rank / (layout.tensor * layout.data), inStage = rank % (layout.tensor * layout.data);
  // The groups megatron-run splits off the world, on both worlds.
  struct Groups {
    std::unique_ptr<comm::Communicator> tp, dp, pp, embedding;
  } groups[2];
  comm::Communicator *worlds[2] = {&cpuWorld, &deviceWorld};
  for (int w = 0; w < 2; ++w) {
    comm::Communicator &world = *worlds[w];
    Groups &g = groups[w];
    if (layout.tensor > 1 && !(g.tp = world.split(rank / layout.tensor, tpRank, "tp", error)))
      return error;
    if (layout.data > 1 && !(g.dp = world.split(stage * layout.tensor + tpRank, replica, "dp", error)))
      return error;
    if (layout.stages > 1) {
      if (!(g.pp = world.split(inStage, stage, "pp", error)))
        return error;
      g.embedding = g.pp->split(plan.sumsTiedEmbedding() ? 0 : -1, stage, "embedding", error);
      if (!error.empty())
        return error;
    }
  }
  std::unique_ptr<runtime::Engine> cpu =
      runtime::Engine::create(plan, error, groups[0].tp.get(), groups[0].dp.get(), groups[0].pp.get(),
                              groups[0].embedding.get());
  if (!cpu)
    return "CPU engine: " + error;
  std::unique_ptr<device::DeviceEngine> gpu =
      device::DeviceEngine::create(plan, set, backend, error, groups[1].tp.get(), groups[1].dp.get(),
                                   groups[1].pp.get(), groups[1].embedding.get());
  if (!gpu)
    return "device engine: " + error;

  test::fillRandomly(*cpu, 42 + uint64_t(tpRank)); // each tensor-parallel rank its shard; replicas alike
  for (const plan::Param &p : plan.params)
    if (error = upload(*cpu, *gpu, p.buffer); !error.empty())
      return error;
  cpu->zero(plan::Arena::Grads);
  if (error = gpu->zero(plan::Arena::Grads); !error.empty())
    return error;

  if (error = runMicroBatches(*cpu, *gpu, replica, result); !error.empty())
    return error;
  if (plan.program("finalize_grads")) {
    if (error = cpu->run("finalize_grads", {}); !error.empty())
      return "CPU engine: " + error;
    if (error = gpu->run("finalize_grads", {}); !error.empty())
      return "device engine: " + error;
  }
  for (const plan::Param &p : plan.params) {
    std::vector<double> gradient = deviceValues(*gpu, p.grad, error);
    if (!error.empty())
      return error;
    const double difference = relativeDifference(gradient, cpuValues(*cpu, p.grad));
    ++result.gradients;
    if (!(difference <= result.worstGradient)) {
      result.worstGradient = difference;
      result.worstParameter = p.name;
    }
    result.deviceGradients.push_back(std::move(gradient));
  }
  if (optimizer)
    return optimizerStep(*cpu, *gpu, backend, tpRank, replica, {groups[0].tp.get(), groups[0].dp.get()},
                         {groups[1].tp.get(), groups[1].dp.get()}, result);
  return {};
}

/// Every rank of `layout` on both engines; the root cause of a failure, or "".
std::string runAll(const std::vector<plan::Plan> &stagePlans, Layout layout, bool optimizer,
                   std::vector<RankResult> &results) {
  test::SimulatedKernels &kernels = test::simulatedKernels();
  if (!kernels.error.empty())
    return kernels.error;
  const int n = layout.ranks();
  test::SharedSimulatedDevice sharedDevice(kernels.library);
  std::vector<std::unique_ptr<test::SharedSimulatedDevice::Stream>> streams = sharedDevice.streams(n);
  comm::ThreadWorldOptions options;
  options.timeout = std::chrono::seconds(120); // a rank may compile a kernel for the simulator meanwhile
  std::string error;
  std::unique_ptr<comm::ThreadWorld> deviceWorld =
      device::createSameDeviceWorld(test::SharedSimulatedDevice::backends(streams), error, options);
  if (!deviceWorld)
    return error;
  comm::ThreadWorld cpuWorld(n, options);
  std::vector<codegen::KernelSet> sets;
  for (const plan::Plan &plan : stagePlans)
    sets.push_back(codegen::generateKernels(plan));
  results.assign(size_t(n), RankResult());
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      const size_t stage = size_t(r / (layout.tensor * layout.data));
      std::string e = runRank(stagePlans[stage], layout, r, cpuWorld.communicator(r), deviceWorld->communicator(r),
                              *streams[size_t(r)], sets[stage], optimizer, results[size_t(r)]);
      if (!e.empty()) { // no peer may wait for this rank in either world
        cpuWorld.communicator(r).abort(e);
        deviceWorld->communicator(r).abort(e);
      }
      errors[size_t(r)] = e;
      cpuWorld.finished(r);
      deviceWorld->finished(r);
    });
  for (std::thread &t : threads)
    t.join();
  for (int r = 0; r < n; ++r)
    if (!errors[size_t(r)].empty())
      return "rank " + std::to_string(r) + ": " + errors[size_t(r)];
  return {};
}

void expectMatch(const char *model, const std::vector<plan::Plan> &stagePlans, Layout layout, double lossTolerance,
                 double gradientTolerance, std::vector<RankResult> &results, bool optimizer = false) {
  ASSERT_EQ(runAll(stagePlans, layout, optimizer, results), "");
  for (size_t r = 0; r < results.size(); ++r) {
    const RankResult &c = results[r];
    const plan::Plan &plan = stagePlans[r / size_t(layout.tensor * layout.data)];
    std::printf("%s, rank %zu of tp %d x dp %d x pp %d on one simulated device:\n", model, r, layout.tensor,
                layout.data, layout.stages);
    for (size_t i = 0; i < c.cpuLosses.size(); ++i)
      std::printf("  loss %zu: CPU %.9g, device %.9g (relative difference %.3g)\n", i, c.cpuLosses[i],
                  c.deviceLosses[i], std::fabs(c.deviceLosses[i] - c.cpuLosses[i]) / std::fabs(c.cpuLosses[i]));
    std::printf("  %d parameter gradients: worst %.3g of the tensor's scale (%s)\n", c.gradients, c.worstGradient,
                c.worstParameter.c_str());
    // Two micro-batches' losses, on the stages that compute the loss.
    ASSERT_EQ(c.cpuLosses.size(), plan.pipeline.stage == plan.pipeline.stages - 1 ? 2u : 0u);
    for (size_t i = 0; i < c.cpuLosses.size(); ++i)
      EXPECT_NEAR(c.deviceLosses[i], c.cpuLosses[i], lossTolerance * std::fabs(c.cpuLosses[i]))
          << "rank " << r << " micro-batch " << i;
    EXPECT_EQ(c.gradients, int(plan.params.size()));
    EXPECT_LE(c.worstGradient, gradientTolerance) << "rank " << r << ": " << c.worstParameter;
    if (optimizer) {
      std::printf("  gradient norm: CPU %.9g, device %.9g; parameters after AdamW differ by %.3g on average "
                  "(worst element %.3g)\n",
                  c.cpuNorm, c.deviceNorm, c.parameterDifference, c.worstParameterElement);
      EXPECT_NEAR(c.deviceNorm, c.cpuNorm, 1e-6 * c.cpuNorm) << "rank " << r;
      EXPECT_GT(c.cpuNorm, kClip) << "clipping takes part";
      EXPECT_LE(c.parameterDifference, 1e-5) << "rank " << r;
      // Every rank of the run clips with the same norm, bit for bit.
      EXPECT_EQ(c.deviceNorm, results[0].deviceNorm) << "rank " << r;
    }
  }
  // After finalize_grads the replicas of a tensor-parallel rank hold the same sums, bit for bit; and the tensor-
  // parallel ranks of one replica the same losses (the vocabulary-parallel loss is all-reduced).
  for (int r = 0; r < layout.ranks(); ++r) {
    const int first = r - r % (layout.tensor * layout.data) + r % layout.tensor;
    if (first != r) {
      EXPECT_EQ(results[size_t(r)].deviceGradients, results[size_t(first)].deviceGradients) << "rank " << r;
    }
  }
  for (int r = 0; r < layout.ranks(); ++r)
    EXPECT_EQ(results[size_t(r)].deviceLosses, results[size_t(r - r % layout.tensor)].deviceLosses) << "rank " << r;
}

TEST(CudaMultiRankDevice, GptDataParallelMatchesTheCpuEngines) {
  // Two replicas: each runs its own micro-batches, finalize_grads sums their gradients over "dp".
  std::vector<RankResult> results;
  // Then the optimizer step: the norm counted on the first replica and summed over "dp".
  expectMatch("gpt f32, dp 2", {test::parallelGptPlan(1, 2)}, Layout{1, 2}, 1e-5, 1e-5, results, true);
}

TEST(CudaMultiRankDevice, GptTensorAndSequenceParallelMatchesTheCpuEngines) {
  // All-reduces, the sequence-parallel all-gathers and reduce-scatters, the vocabulary-parallel loss, and the
  // layer norms' gradients summed over "tp" by finalize_grads.
  std::vector<RankResult> results;
  // Then the optimizer step: each rank's shard in the norm (the replicated norms' parameters on rank 0), summed
  // over "tp".
  expectMatch("gpt f32, tp 2 + sequence parallel", {test::shardedGptPlan()}, Layout{2, 1}, 1e-5, 1e-5, results,
              true);
}

TEST(CudaMultiRankDevice, GptTensorParallelBf16MatchesTheCpuEngines) {
  // 16-bit activations all-reduced on the device in bf16 (summed in f32, rounded once, as the CPU rounds the
  // step's output). As in the one-rank bf16 test (DeviceEngineTest), a value now and then rounds to the
  // neighbouring bf16 number where the two backends' kernels sum in another order, and the attention runs on
  // tensor cores, which round the probabilities and dS to bf16 before their products where the CPU keeps them in
  // f32 (about two units of an output's scale per attention step, carried into the gradients below it): four
  // units (2^-6) of a gradient's scale at most; the loss within 1e-4. Measured: losses 6.1e-6, gradients 8.7e-3
  // (before the tensor-core attention: losses bitwise, gradients 5.2e-3, from one rounding flip in the
  // vocabulary-parallel loss's gradient).
  std::vector<RankResult> results;
  expectMatch("gpt bf16, tp 2 + sequence parallel", {test::parallelGptPlan(2, 1, plan::DType::BF16)},
              Layout{2, 1}, 1e-4, 0x1p-6, results);
}

} // namespace

namespace {

TEST(CudaMultiRankDevice, GptPipelineParallelMatchesTheCpuEngines) {
  // Two stages: the activations and their gradients as messages between the stages' chunks (tagged by
  // micro-batch, in the 1F1B order of the plan's schedule, through the stash slots), and the tied embedding's
  // gradient summed over the "embedding" group of the first and last stage.
  const std::vector<plan::Plan> &plans = test::pipelineGptPlans(2);
  ASSERT_EQ(plans.size(), 2u);
  ASSERT_TRUE(plans[0].sumsTiedEmbedding() && plans[1].sumsTiedEmbedding());
  std::vector<RankResult> results;
  expectMatch("gpt f32, pp 2", plans, Layout{1, 1, 2}, 1e-5, 1e-5, results);
  ASSERT_EQ(results.size(), 2u);
  // The tied embedding's copies (one parameter name on both stages) hold one sum after finalize_grads.
  int tied = 0;
  for (size_t i = 0; i < plans[0].params.size(); ++i)
    for (size_t j = 0; j < plans[1].params.size(); ++j)
      if (plans[0].params[i].name == plans[1].params[j].name) {
        ++tied;
        EXPECT_EQ(results[0].deviceGradients[i], results[1].deviceGradients[j]) << plans[0].params[i].name;
      }
  EXPECT_EQ(tied, 1);
}

} // namespace

namespace {

TEST(CudaMultiRankDevice, ARankThatFailsStopsItsPeersNamingTheStep) {
  // Rank 1 of a tp=2 group gives up before its first program; rank 0's train_step then fails in its first
  // collective, naming that step and rank 1's reason, instead of waiting for it.
  test::SimulatedKernels &kernels = test::simulatedKernels();
  ASSERT_EQ(kernels.error, "");
  const plan::Plan &plan = test::shardedGptPlan();
  const codegen::KernelSet set = codegen::generateKernels(plan);
  test::SharedSimulatedDevice sharedDevice(kernels.library);
  std::vector<std::unique_ptr<test::SharedSimulatedDevice::Stream>> streams = sharedDevice.streams(2);
  std::string rankZero;
  const auto start = std::chrono::steady_clock::now();
  std::string error = device::runRanksOnDevice(
      test::SharedSimulatedDevice::backends(streams), [&](int rank, comm::Communicator &world) -> std::string {
        std::string error;
        std::unique_ptr<comm::Communicator> tp = world.split(0, rank, "tp", error);
        if (!tp)
          return error;
        std::unique_ptr<device::DeviceEngine> gpu =
            device::DeviceEngine::create(plan, set, *streams[size_t(rank)], error, tp.get());
        if (!gpu)
          return error;
        if (rank == 1)
          return "its data loader failed";
        if (error = gpu->zero(plan::Arena::Grads); !error.empty())
          return error;
        rankZero = gpu->run("train_step", {});
        return rankZero;
      });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  std::printf("rank 0: %s\n", rankZero.c_str());
  EXPECT_EQ(error, "rank 1: its data loader failed");
  EXPECT_NE(rankZero.find(" of train_step ("), std::string::npos) << rankZero;
  EXPECT_NE(rankZero.find("rank 1 of group \"world\" failed (its data loader failed)"), std::string::npos)
      << rankZero;
}

} // namespace
