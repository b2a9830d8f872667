//===- ScheduleTest.cpp - Pipeline schedules against their closed forms ----===//
//
// The simulated 1F1B and interleaved schedules must have the bubble and the activation memory that Narayanan et
// al. 2021 and Korthikanti et al. 2022 derive for them, for every (stages, micro-batches, virtual stages) tried,
// with a backward twice as long as the forward.

#include "megatron/Schedule/PipelineSchedule.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace megatron::schedule;

namespace {

/// Every micro-batch passes forward then backward through every chunk of every stage exactly once.
void expectComplete(const Schedule &s) {
  for (int stage = 0; stage < s.stages; ++stage) {
    const std::vector<Step> &steps = s.steps[static_cast<size_t>(stage)];
    ASSERT_EQ(steps.size(), static_cast<size_t>(2 * s.microBatches * s.virtualStages)) << "stage " << stage;
    for (int j = 0; j < s.microBatches; ++j)
      for (int c = 0; c < s.virtualStages; ++c) {
        auto f = std::find(steps.begin(), steps.end(), Step{true, j, c});
        auto b = std::find(steps.begin(), steps.end(), Step{false, j, c});
        ASSERT_NE(f, steps.end());
        ASSERT_NE(b, steps.end());
        EXPECT_LT(f, b) << "a backward before its forward";
      }
  }
}

TEST(PipelineSchedule, OneForwardOneBackwardMatchesItsClosedForms) {
  for (int p : {1, 2, 4, 8})
    for (int m : {1, 2, 4, 8, 16, 32}) {
      SCOPED_TRACE("p=" + std::to_string(p) + " m=" + std::to_string(m));
      Schedule s = oneForwardOneBackward(p, m);
      expectComplete(s);
      std::string error;
      Timeline t = simulate(s, 1.0, 2.0, error);
      ASSERT_EQ(error, "");
      // (m + p - 1) slots of forward + backward: the pipeline fills and drains once.
      EXPECT_NEAR(t.makespan, (m + p - 1) * 3.0, 1e-9);
      EXPECT_NEAR(t.bubbleFraction, double(p - 1) / (m + p - 1), 1e-9);
      // Stage s holds the activations of min(p - s, m) micro-batches at its peak: p on the first stage.
      for (int stage = 0; stage < p; ++stage)
        EXPECT_EQ(t.peakInFlight[static_cast<size_t>(stage)], std::min(p - stage, m)) << "stage " << stage;
    }
}

TEST(PipelineSchedule, InterleavedShrinksTheBubbleAndGrowsTheFirstStagesMemory) {
  for (int p : {2, 4, 8})
    for (int v : {2, 3, 4})
      for (int m : {2 * p, 4 * p, 8 * p}) {
        SCOPED_TRACE("p=" + std::to_string(p) + " v=" + std::to_string(v) + " m=" + std::to_string(m));
        std::string error;
        Schedule s = interleaved(p, m, v, error);
        ASSERT_EQ(error, "");
        expectComplete(s);
        Timeline t = simulate(s, 1.0, 2.0, error);
        ASSERT_EQ(error, "");
        // The bubble shrinks v-fold: (p - 1) / (v·m + p - 1) of the step.
        EXPECT_NEAR(t.bubbleFraction, double(p - 1) / (v * m + p - 1), 1e-9);
        // Korthikanti et al. 2022: the first stage holds p·(1 + (p - 1)/(p·v)) micro-batches' activations.
        EXPECT_NEAR(t.peakInFlight[0], p * (1.0 + double(p - 1) / (p * v)), 1e-9);
      }
}

TEST(PipelineSchedule, InterleavedNeedsWholeGroupsOfMicroBatches) {
  std::string error;
  Schedule s = interleaved(4, 6, 2, error);
  EXPECT_TRUE(s.steps.empty());
  EXPECT_EQ(error, "the interleaved schedule needs the number of micro-batches (6) to be a multiple of the pipeline "
                   "stages (4)");
}

TEST(PipelineSchedule, ADeadlockingOrderIsReported) {
  Schedule s = oneForwardOneBackward(2, 2);
  std::swap(s.steps[1][0], s.steps[1][1]); // the last stage's first backward before its forward
  std::string error;
  Timeline t = simulate(s, 1.0, 2.0, error);
  EXPECT_TRUE(t.steps.empty());
  EXPECT_EQ(error, "the schedule deadlocks: every stage waits for a step another stage has not run");
}

TEST(PipelineSchedule, ChromeTraceHasOneRowPerStageAndOneEventPerStep) {
  std::string error;
  Timeline t = simulate(oneForwardOneBackward(2, 3), 1.0, 2.0, error);
  std::string trace = chromeTrace(t, 1000.0);
  EXPECT_NE(trace.find("\"args\": {\"name\": \"stage 1\"}"), std::string::npos);
  EXPECT_NE(trace.find("{\"name\": \"F0.0\", \"cat\": \"forward\", \"ph\": \"X\", \"pid\": 0, \"tid\": 0, \"ts\": "
                       "0.000, \"dur\": 1000.000}"),
            std::string::npos)
      << trace;
  size_t events = 0;
  for (size_t at = trace.find("\"ph\": \"X\""); at != std::string::npos; at = trace.find("\"ph\": \"X\"", at + 1))
    ++events;
  EXPECT_EQ(events, t.steps.size());
}

} // namespace
