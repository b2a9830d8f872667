//===- PipelineStepsTest.cpp - Send and recv steps between pipeline stages ==//
//
// Two hand-written stage plans joined by a pipeline group of two rank threads: stage 0's forward half sends a
// micro-batch's activation to chunk 1, whose forward half receives it into a stash buffer; stage 1's backward
// half sends it back as the "gradient", which stage 0's backward receives. The stages run their micro-batches in
// different orders and on different stash slots, as interleaved schedules do: every message still reaches the
// step that asks for it (tags), and each slot keeps its own micro-batch. Then the binding errors.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

using namespace megatron;
using runtime::Engine;
using runtime::RunContext;

namespace {

using Attrs = std::map<std::string, plan::AttrValue>;

/// A stage plan: buffers of 4 floats in their arenas, programs added one by one.
struct StagePlan {
  explicit StagePlan(int stage) {
    value.pipeline.stages = 2;
    value.pipeline.stage = stage;
    value.pipeline.microBatches = 2;
    value.pipeline.stashSlots = 2;
  }
  int buffer(plan::Arena arena) {
    plan::Buffer b;
    b.arena = arena;
    b.shape = {4};
    b.bytes = 16;
    int64_t &end = value.arenaBytes[static_cast<int>(arena)];
    b.offset = end;
    end += plan::kAlignment;
    value.buffers.push_back(b);
    return static_cast<int>(value.buffers.size()) - 1;
  }
  void program(std::string name, std::string op, int buffer, Attrs attrs, int chunk = 0) {
    plan::Program p;
    p.name = std::move(name);
    p.chunk = chunk;
    bool send = op == "send";
    p.steps.push_back({std::move(op), "boundary", send ? std::vector<int>{buffer} : std::vector<int>{},
                       send ? std::vector<int>{} : std::vector<int>{buffer}, send ? std::vector<bool>{}
                                                                                  : std::vector<bool>{false},
                       std::move(attrs)});
    value.programs.push_back(std::move(p));
  }
  plan::Plan value;
};

Attrs message(int64_t peer, bool grad) {
  Attrs attrs{{"chunk", peer}, {"index", int64_t(0)}};
  if (grad)
    attrs["grad"] = true;
  return attrs;
}

RunContext at(int64_t microBatch, int slot) {
  RunContext context;
  context.microBatch = microBatch;
  context.stashSlot = slot;
  return context;
}

TEST(PipelineSteps, MessagesFindTheirStepAndSlotsKeepTheirMicroBatch) {
  std::string error = comm::runRanks(2, [](int rank, comm::Communicator &world) -> std::string {
    std::string error;
    StagePlan plan(rank);
    if (rank == 0) {
      int x = plan.buffer(plan::Arena::Inputs), g = plan.buffer(plan::Arena::Activations);
      plan.program("train_forward_chunk0", "send", x, message(1, false));
      plan.program("train_backward_chunk0", "recv", g, message(1, true));
      std::unique_ptr<Engine> engine = Engine::create(plan.value, error, nullptr, nullptr, &world);
      if (!engine)
        return error;
      for (int64_t m = 0; m < 2; ++m) { // forwards of micro-batches 0 and 1
        std::fill_n(engine->as<float>(x), 4, static_cast<float>(10 + m));
        if (std::string e = engine->run("train_forward_chunk0", at(m, static_cast<int>(m))); !e.empty())
          return e;
      }
      for (int64_t m = 0; m < 2; ++m) { // backwards, in order
        if (std::string e = engine->run("train_backward_chunk0", at(m, 0)); !e.empty())
          return e;
        if (engine->as<float>(g)[3] != static_cast<float>(10 + m))
          return "stage 0 received " + std::to_string(engine->as<float>(g)[3]) + " as micro-batch " +
                 std::to_string(m) + "'s gradient";
      }
      return {};
    }
    int h = plan.buffer(plan::Arena::Stash);
    plan.program("train_forward_chunk1", "recv", h, message(0, false), 0);
    plan.program("train_backward_chunk1", "send", h, message(0, true), 0);
    std::unique_ptr<Engine> engine = Engine::create(plan.value, error, nullptr, nullptr, &world);
    if (!engine)
      return error;
    // Micro-batch 1 first, into slot 0; micro-batch 0 into slot 1; backwards in the other order.
    for (auto [m, slot] : {std::pair<int64_t, int>{1, 0}, {0, 1}})
      if (std::string e = engine->run("train_forward_chunk1", at(m, slot)); !e.empty())
        return e;
    for (auto [m, slot] : {std::pair<int64_t, int>{0, 1}, {1, 0}})
      if (std::string e = engine->run("train_backward_chunk1", at(m, slot)); !e.empty())
        return e;
    return {};
  });
  EXPECT_EQ(error, "");
}

TEST(PipelineSteps, BindingErrorsNameTheProblem) {
  std::string error = comm::runRanks(2, [](int rank, comm::Communicator &world) -> std::string {
    auto failure = [&](const StagePlan &plan, comm::Communicator *group) {
      std::string error;
      EXPECT_FALSE(Engine::create(plan.value, error, nullptr, nullptr, group));
      return error;
    };
    StagePlan far(rank);
    far.program("train_forward_chunk0", "send", far.buffer(plan::Arena::Activations), message(rank == 0 ? 3 : 1, false));
    std::string error = failure(far, &world);
    if (error.find(rank == 0 ? "chunk 0 cannot exchange messages with chunk 3 (only with its neighbours among 2)"
                             : "chunk 1 cannot exchange messages with chunk 1") == std::string::npos)
      return "far: " + error;
    StagePlan loose(rank);
    loose.program("forward", "send", loose.buffer(plan::Arena::Activations), message(1 - rank, false), -1);
    error = failure(loose, &world);
    if (error.find("a pipeline message belongs to a program of a pipeline chunk") == std::string::npos)
      return "loose: " + error;
    StagePlan lonely(rank);
    error = failure(lonely, nullptr);
    if (error.find("pipeline stages, but no pipeline communicator was given") == std::string::npos)
      return "lonely: " + error;
    return {};
  });
  EXPECT_EQ(error, "");
}

} // namespace
