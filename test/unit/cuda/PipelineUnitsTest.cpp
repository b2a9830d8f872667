//===- PipelineUnitsTest.cpp - Pipeline messages under NCCL's semantics, on the device engine ---===//
//
// The two stages of the pipelined test GPT (1F1B, two micro-batches) on device engines sharing one simulated
// device, their pipeline group wrapped by the strict communicator (InOrderP2PCommunicator.h: NCCL's untagged,
// in-order, rendezvous send and recv). Issued as the device engine used to issue them, every send and recv step
// alone as the programs run, the stages deadlock, and the test says so instead of hanging; issued in the units
// mt-plan checks (plan::messageUnits with GroupedPerBackwardForwardPair, DeviceEngine::exchange and
// flushMessages) they complete, and the losses are bit for bit those of the old issuing on the tagged same-device
// communicator, so staging the messages changes nothing they carry.
//
//===----------------------------------------------------------------------===//

#include "InOrderP2PCommunicator.h"
#include "EngineValues.h"
#include "RandomFill.h"
#include "SharedSimulatedDevice.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "megatron/Plan/PipelineMessages.h"
#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/SameDeviceCommunicator.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

using namespace megatron;

namespace {

/// One stage's schedule (the first iteration's micro-batches, then finalize_grads) on its device engine, issuing
/// its messages as `issue` says. `losses` gets the last stage's.
std::string runStage(const plan::Plan &plan, const codegen::KernelSet &kernels, device::DeviceBackend &backend,
                     comm::Communicator &hostWorld, comm::Communicator &deviceWorld, plan::MessageIssue issue,
                     std::vector<double> &losses) {
  const int stage = int(plan.pipeline.stage);
  std::string error;
  std::unique_ptr<comm::Communicator> hostStages = hostWorld.split(0, stage, "pp", error);
  std::unique_ptr<comm::Communicator> stages = hostStages ? deviceWorld.split(0, stage, "pp", error) : nullptr;
  if (!stages)
    return error;
  std::unique_ptr<comm::Communicator> embedding = stages->split(0, stage, "embedding", error);
  if (!embedding)
    return error;
  // The host engine holds the parameters and inputs (filled as the other device tests fill them) and runs nothing.
  std::unique_ptr<runtime::Engine> host = runtime::Engine::create(plan, error, nullptr, nullptr, hostStages.get());
  if (!host)
    return "host engine: " + error;
  std::unique_ptr<device::DeviceEngine> engine =
      device::DeviceEngine::create(plan, kernels, backend, error, nullptr, nullptr, stages.get(), embedding.get());
  if (!engine)
    return error;
  test::fillRandomly(*host, 42);
  for (const plan::Param &p : plan.params)
    if (error = test::upload(*host, *engine, p.buffer); !error.empty())
      return error;
  if (error = engine->zero(plan::Arena::Grads); !error.empty())
    return error;

  const plan::PipelineInfo &pipeline = plan.pipeline;
  plan::StashSlots slots(pipeline);
  const bool grouped = issue != plan::MessageIssue::OneByOne;
  for (auto [begin, end] : plan::messageUnits(pipeline.schedule, issue)) {
    if (grouped) {
      std::vector<device::DeviceEngine::ScheduledRun> unit;
      for (size_t k = begin; k < end; ++k)
        unit.push_back({pipeline.trainingProgram(pipeline.schedule[k]), pipeline.schedule[k].microBatch});
      if (error = engine->exchange(unit); !error.empty())
        return error;
    }
    for (size_t k = begin; k < end; ++k) {
      const plan::PipelineStep &step = pipeline.schedule[k];
      const int slot = slots.acquire(step);
      if (slot < 0)
        return "no stash slot";
      test::fillInputs(*host, 100 + uint64_t(step.microBatch));
      for (const plan::Input &input : plan.inputs)
        if (error = test::upload(*host, *engine, input.buffer); !error.empty())
          return error;
      runtime::RunContext context;
      context.microBatch = step.microBatch;
      context.stashSlot = slot;
      context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, step.microBatch);
      const std::string name = pipeline.trainingProgram(step);
      if (error = engine->run(name, context); !error.empty())
        return error;
      if (plan.program(name)->loss >= 0) {
        double loss = 0;
        if (error = engine->loss(name, loss); !error.empty())
          return error;
        losses.push_back(loss);
      }
      if (!step.forward)
        slots.release(step);
    }
  }
  if (grouped)
    if (error = engine->flushMessages(); !error.empty())
      return error;
  // An end-of-iteration collective after the held sends: the tied embedding's gradient summed over both stages.
  if (plan.program("finalize_grads"))
    return engine->run("finalize_grads", {});
  return {};
}

struct Outcome {
  std::string error;
  std::vector<std::vector<double>> losses; // per stage
  double seconds = 0;
};

/// Both stages, each a thread with its own stream of one simulated device; with `strict`, their device world's
/// point-to-point calls have NCCL's semantics.
Outcome runStages(plan::MessageIssue issue, bool strict) {
  const std::vector<plan::Plan> &plans = test::pipelineGptPlans(2);
  Outcome outcome;
  test::SimulatedKernels &simulated = test::simulatedKernels();
  if (!simulated.error.empty()) {
    outcome.error = simulated.error;
    return outcome;
  }
  std::vector<codegen::KernelSet> kernels;
  for (const plan::Plan &plan : plans)
    kernels.push_back(codegen::generateKernels(plan));
  test::SharedSimulatedDevice sharedDevice(simulated.library);
  std::vector<std::unique_ptr<test::SharedSimulatedDevice::Stream>> streams = sharedDevice.streams(2);
  comm::ThreadWorldOptions options;
  options.timeout = std::chrono::seconds(120); // a rank may compile a kernel for the simulator meanwhile
  std::unique_ptr<comm::ThreadWorld> deviceWorld =
      device::createSameDeviceWorld(test::SharedSimulatedDevice::backends(streams), outcome.error, options);
  if (!deviceWorld)
    return outcome;
  comm::ThreadWorld hostWorld(2, options);
  test::InOrderP2PWorld inOrder(2, std::chrono::seconds(120));
  outcome.losses.resize(2);
  std::vector<std::string> errors(2);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      std::unique_ptr<comm::Communicator> wrapped = strict ? inOrder.wrap(deviceWorld->communicator(r), r) : nullptr;
      comm::Communicator &world = wrapped ? *wrapped : deviceWorld->communicator(r);
      std::string e = runStage(plans[size_t(r)], kernels[size_t(r)], *streams[size_t(r)], hostWorld.communicator(r),
                               world, issue, outcome.losses[size_t(r)]);
      if (!e.empty()) { // no peer may wait for this rank
        world.abort(e);
        hostWorld.communicator(r).abort(e);
      }
      errors[size_t(r)] = e;
      hostWorld.finished(r);
      deviceWorld->finished(r);
    });
  for (std::thread &t : threads)
    t.join();
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int r = 0; r < 2 && outcome.error.empty(); ++r)
    if (!errors[size_t(r)].empty())
      outcome.error = "rank " + std::to_string(r) + ": " + errors[size_t(r)];
  if (std::string failure = inOrder.failure(); !failure.empty())
    outcome.error = failure; // the root cause, where the ranks' own errors may be the secondary ones
  return outcome;
}

TEST(CudaPipelineUnits, EveryMessageAloneDeadlocksUnderNcclSemantics) {
  ASSERT_GE(test::pipelineGptPlans(2).front().pipeline.microBatches, 2);
  Outcome alone = runStages(plan::MessageIssue::OneByOne, /*strict=*/true);
  std::printf("  every message alone, after %.2f s: %s\n", alone.seconds, alone.error.c_str());
  EXPECT_EQ(alone.error.rfind("deadlock: rank 0 waits in send to rank 1", 0), 0u) << alone.error;
  EXPECT_NE(alone.error.find("rank 1 waits in send to rank 0"), std::string::npos) << alone.error;
}

TEST(CudaPipelineUnits, UnitsCompleteAndCarryTheSameMessages) {
  Outcome tagged = runStages(plan::MessageIssue::OneByOne, /*strict=*/false);
  ASSERT_EQ(tagged.error, "");
  Outcome units = runStages(plan::MessageIssue::GroupedPerBackwardForwardPair, /*strict=*/true);
  ASSERT_EQ(units.error, "");
  std::printf("  two stages, messages in units under NCCL's semantics: %.2f s\n", units.seconds);
  EXPECT_TRUE(units.losses[0].empty());
  ASSERT_EQ(units.losses[1].size(), 2u) << "the last stage's two micro-batches";
  EXPECT_EQ(units.losses, tagged.losses) << "bit for bit";
}

} // namespace
