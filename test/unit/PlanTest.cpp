//===- PlanTest.cpp - The memory planner and the plan's JSON form ----------===//

#include "megatron/Plan/MemoryPlanner.h"
#include "megatron/Plan/Plan.h"

#include <gtest/gtest.h>
#include <random>

using namespace megatron::plan;

namespace {

/// No two buffers alive at the same step may share a byte.
void expectNoConflicts(const std::vector<Lifetime> &lifetimes, const MemoryLayout &layout, int64_t alignment) {
  for (size_t a = 0; a < lifetimes.size(); ++a) {
    EXPECT_EQ(layout.offsets[a] % alignment, 0);
    EXPECT_LE(layout.offsets[a] + lifetimes[a].bytes, layout.arenaBytes);
    for (size_t b = a + 1; b < lifetimes.size(); ++b) {
      bool together = lifetimes[a].first <= lifetimes[b].last && lifetimes[b].first <= lifetimes[a].last;
      bool overlap = layout.offsets[a] < layout.offsets[b] + lifetimes[b].bytes &&
                     layout.offsets[b] < layout.offsets[a] + lifetimes[a].bytes;
      EXPECT_FALSE(together && overlap) << "buffers " << a << " and " << b;
    }
  }
}

TEST(MemoryPlanner, ReusesMemoryOfDeadBuffers) {
  // A chain: each buffer dies when the next is made, so two slots suffice.
  std::vector<Lifetime> chain;
  for (int i = 0; i < 10; ++i)
    chain.push_back({1024, i, i + 1});
  MemoryLayout layout = planMemory(chain, 64);
  expectNoConflicts(chain, layout, 64);
  EXPECT_EQ(layout.peakLiveBytes, 2048);
  EXPECT_EQ(layout.arenaBytes, 2048);
}

TEST(MemoryPlanner, NeverOverlapsLiveBuffersOnRandomPrograms) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<Lifetime> lifetimes;
    for (int i = 0; i < 60; ++i) {
      int first = rng() % 100;
      lifetimes.push_back({1 + static_cast<int64_t>(rng() % 5000), first, first + static_cast<int>(rng() % 30)});
    }
    MemoryLayout layout = planMemory(lifetimes, 64);
    expectNoConflicts(lifetimes, layout, 64);
    EXPECT_GE(layout.arenaBytes, layout.peakLiveBytes);
    // Greedy best-fit stays close to the lower bound on such programs.
    EXPECT_LE(layout.arenaBytes, layout.peakLiveBytes * 3 / 2);
  }
}

TEST(MemoryPlanner, LayoutIsDeterministic) {
  std::vector<Lifetime> lifetimes = {{100, 0, 3}, {100, 1, 2}, {64, 2, 5}, {100, 4, 6}};
  EXPECT_EQ(planMemory(lifetimes, 64).offsets, planMemory(lifetimes, 64).offsets);
}

Plan smallPlan() {
  Plan plan;
  plan.model.family = "gpt";
  plan.model.fingerprint = "0123";
  plan.arenaBytes[static_cast<int>(Arena::Params)] = 64;
  plan.arenaBytes[static_cast<int>(Arena::Grads)] = 64;
  plan.arenaBytes[static_cast<int>(Arena::Optimizer)] = 128;
  plan.arenaBytes[static_cast<int>(Arena::Activations)] = 64;
  plan.arenaBytes[static_cast<int>(Arena::Inputs)] = 64;
  plan.buffers = {{Arena::Params, 0, 16, DType::F32, {4}},
                  {Arena::Grads, 0, 16, DType::F32, {4}},
                  {Arena::Optimizer, 0, 16, DType::F32, {4}},
                  {Arena::Optimizer, 64, 16, DType::F32, {4}},
                  {Arena::Inputs, 0, 8, DType::I32, {2}},
                  {Arena::Activations, 0, 4, DType::F32, {}}};
  Param p;
  p.name = "w";
  p.shape = {4};
  p.buffer = 0;
  p.grad = 1;
  p.expAvg = 2;
  p.expAvgSq = 3;
  p.initStd = 0.02;
  plan.params = {p};
  plan.inputs = {{"tokens", 4}};
  Program program;
  program.name = "train_step";
  program.loss = 5;
  program.steps.push_back({"fill", "loss", {}, {5}, {false}, {{"value", 0.5}, {"n", int64_t(3)}, {"b", true}}});
  plan.programs = {program};
  return plan;
}

TEST(PlanJson, RoundTrips) {
  std::string error;
  std::optional<Plan> parsed = parsePlan(toJson(smallPlan()), "mem", error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(toJson(*parsed), toJson(smallPlan()));
  EXPECT_EQ(std::get<double>(parsed->programs[0].steps[0].attrs.at("value")), 0.5);
  EXPECT_EQ(std::get<int64_t>(parsed->programs[0].steps[0].attrs.at("n")), 3);
}

/// Parses `json` and returns the error, which must exist.
std::string errorOf(const std::string &json) {
  std::string error;
  EXPECT_FALSE(parsePlan(json, "model.plan", error));
  return error;
}

std::string replaced(std::string text, const std::string &from, const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(PlanJson, RefusesWhatIsNotAPlan) {
  EXPECT_NE(errorOf("{ not json").find("'model.plan' is not a plan: it is not valid JSON"), std::string::npos);
  EXPECT_NE(errorOf("{\"format\": \"onnx\"}").find("it is not a megatron plan"), std::string::npos);
}

TEST(PlanJson, RefusesOtherVersions) {
  std::string error = errorOf(replaced(toJson(smallPlan()), "\"version\": 4", "\"version\": 2"));
  EXPECT_NE(error.find("format version 2, and this megatron-run reads version 4"), std::string::npos) << error;
}

TEST(PlanJson, DetectsModification) {
  std::string error = errorOf(replaced(toJson(smallPlan()), "\"init_std\":0.02", "\"init_std\":0.03"));
  EXPECT_NE(error.find("does not match its fingerprint"), std::string::npos) << error;
}

TEST(PlanJson, RefusesBuffersOutsideTheirArena) {
  std::string error = errorOf(replaced(toJson(smallPlan()), "\"offset\":64", "\"offset\":128"));
  EXPECT_NE(error.find("buffer 3 lies outside its arena 'optimizer'"), std::string::npos) << error;
}

TEST(PlanJson, RefusesUnknownBufferIds) {
  std::string error = errorOf(replaced(toJson(smallPlan()), "\"out\":[5]", "\"out\":[9]"));
  EXPECT_NE(error.find("step 0 (fill) output names buffer 9 of 6"), std::string::npos) << error;
}

TEST(PlanJson, RefusesInconsistentSizes) {
  std::string error = errorOf(replaced(toJson(smallPlan()), "\"bytes\":8", "\"bytes\":12"));
  EXPECT_NE(error.find("buffer 4 has 12 bytes for its shape and dtype"), std::string::npos) << error;
}

TEST(PlanJson, MissingFileIsReported) {
  std::string error;
  EXPECT_FALSE(readPlan("/nonexistent/model.plan", error));
  EXPECT_NE(error.find("cannot read plan '/nonexistent/model.plan'"), std::string::npos);
}

} // namespace
