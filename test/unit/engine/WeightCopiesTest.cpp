//===- WeightCopiesTest.cpp - The 16-bit copies of the parameters stay current ===//
//
// A mixed-precision plan computes with 16-bit copies of its f32 parameters, kept in the weights arena and written
// by the plan's cast_weights program (Plan.h, Arena::Weights). The engine runs that program before any program
// that follows a change of the parameters. These tests pin down what counts as a change: any access to a
// parameter's bytes through the engine, and an explicit weightsChanged() for a writer that keeps a pointer.
//
//===----------------------------------------------------------------------===//

#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace megatron;
using runtime::Engine;
using runtime::RunContext;

namespace {

/// w (f32 parameter) -> w16 (its bf16 copy, cast_weights) -> y (f32, the program "forward" widens the copy).
struct CopyPlan {
  CopyPlan() {
    w = buffer(plan::Arena::Params, plan::DType::F32);
    w16 = buffer(plan::Arena::Weights, plan::DType::BF16);
    y = buffer(plan::Arena::Activations, plan::DType::F32);
    value.params.push_back({"w", 0, {4}, {}, w});
    program("cast_weights", w, w16);
    program("forward", w16, y);
  }
  int buffer(plan::Arena arena, plan::DType dtype) {
    plan::Buffer b;
    b.arena = arena;
    b.dtype = dtype;
    b.shape = {4};
    b.bytes = 4 * plan::bytesOf(dtype);
    int64_t &end = value.arenaBytes[static_cast<int>(arena)];
    b.offset = end;
    end += plan::kAlignment;
    value.buffers.push_back(b);
    return static_cast<int>(value.buffers.size()) - 1;
  }
  void program(std::string name, int in, int out) {
    plan::Program p;
    p.name = std::move(name);
    p.steps.push_back({"cast", "w", {in}, {out}, {false}, {}});
    value.programs.push_back(std::move(p));
  }
  plan::Plan value;
  int w = -1, w16 = -1, y = -1;
};

/// 1 + 2^-10 is not a bf16 value (8 bits of mantissa): its copy rounds to 1. 3 + 2^-6 is a bf16 value.
constexpr float kUnrepresentable = 1.0f + 0x1p-10f;
constexpr float kRepresentable = 3.0f + 0x1p-6f;

class WeightCopies : public ::testing::Test {
protected:
  void SetUp() override {
    std::string error;
    engine = Engine::create(plan.value, error, runtime::ParallelRank{});
    ASSERT_TRUE(engine) << error;
  }
  std::string forward() { return engine->run("forward", RunContext{}); }
  float y(int i) { return engine->as<float>(plan.y)[i]; }

  CopyPlan plan;
  std::unique_ptr<Engine> engine;
};

TEST_F(WeightCopies, TheFirstRunCastsTheParameters) {
  std::fill_n(engine->as<float>(plan.w), 4, kUnrepresentable);
  ASSERT_EQ(forward(), "");
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(y(i), 1.0f) << "the copy is the parameter rounded to bf16";
}

TEST_F(WeightCopies, WritingAParameterThroughTheEngineRefreshesTheCopy) {
  std::fill_n(engine->as<float>(plan.w), 4, kUnrepresentable);
  ASSERT_EQ(forward(), "");
  std::fill_n(engine->as<float>(plan.w), 4, kRepresentable); // as an optimizer step writes it
  ASSERT_EQ(forward(), "");
  EXPECT_EQ(y(3), kRepresentable);
  // runStep refreshes too (step-by-step comparisons run steps alone).
  engine->as<float>(plan.w)[3] = -kRepresentable;
  ASSERT_EQ(engine->runStep("forward", 0, RunContext{}), "");
  EXPECT_EQ(y(3), -kRepresentable);
}

TEST_F(WeightCopies, AWriterThatKeepsAPointerSaysSo) {
  // The distributed optimizer updates the parameters arena through a flat pointer it took once.
  float *flat = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Params));
  std::fill_n(flat, 4, kRepresentable);
  ASSERT_EQ(forward(), "");
  ASSERT_EQ(y(0), kRepresentable);
  flat[0] = 2.0f;
  ASSERT_EQ(forward(), "");
  EXPECT_EQ(y(0), kRepresentable) << "unannounced, the copy is not refreshed";
  engine->weightsChanged();
  ASSERT_EQ(forward(), "");
  EXPECT_EQ(y(0), 2.0f);
}

TEST_F(WeightCopies, RunsCastWeightsOncePerChange) {
  // The copies are made once for all the micro-batches of an iteration: a write into them by hand survives runs
  // until the parameters change.
  float *flat = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Params));
  std::fill_n(flat, 4, 1.0f);
  ASSERT_EQ(engine->refreshWeights(), "");
  float *copy = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Weights));
  copy[1] = 5.0f;
  for (int microBatch = 0; microBatch < 3; ++microBatch) {
    ASSERT_EQ(forward(), "");
    EXPECT_EQ(y(1), 5.0f) << "micro-batch " << microBatch << " cast the weights again";
  }
}

} // namespace
