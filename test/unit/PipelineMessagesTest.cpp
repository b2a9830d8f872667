//===- PipelineMessagesTest.cpp - Pipeline messages under NCCL's semantics -===//
//
// The in-order rendezvous simulator must find the hangs and crossed messages that NCCL would produce in
// hand-made sequences, and the pipeline schedules of lib/Schedule (1F1B and interleaved, over many stage, chunk and
// micro-batch counts), lowered into stage plans shaped as mt-plan shapes them (a chunk's program receives its
// inputs, computes, sends its outputs), must pass when the engine groups each program's trailing sends with the
// next program's leading recvs. Issued one by one, as plain blocking calls, 1F1B hangs: the test pins that down
// too, as the reason the grouping exists. Compiled plans are checked by mt-plan itself (test/Passes).

#include "megatron/Plan/PipelineMessages.h"
#include "megatron/Schedule/PipelineSchedule.h"

#include <gtest/gtest.h>

using namespace megatron;
using namespace megatron::plan;

namespace {

MessageOp message(bool send, int peer, int64_t microBatch, int64_t boundary, bool grad, int64_t group) {
  MessageOp op;
  op.send = send;
  op.peer = peer;
  op.identity.microBatch = microBatch;
  op.identity.boundary = boundary;
  op.identity.grad = grad;
  op.identity.elements = 8;
  op.group = group;
  op.where = "test";
  return op;
}

TEST(PipelineMessages, MatchingSendAndRecvComplete) {
  std::vector<std::vector<MessageOp>> ranks = {
      {message(true, 1, 0, 0, false, 0), message(false, 1, 0, 0, true, 1)},
      {message(false, 0, 0, 0, false, 0), message(true, 0, 0, 0, true, 1)},
  };
  EXPECT_EQ(simulateInOrderRendezvous(ranks), "");
}

TEST(PipelineMessages, BothSendingFirstDeadlocks) {
  // Stage 0 sends micro-batch 1's activation, stage 1 micro-batch 0's gradient; each recv waits behind its send.
  std::vector<std::vector<MessageOp>> ranks = {
      {message(true, 1, 1, 0, false, 0), message(false, 1, 0, 0, true, 1)},
      {message(true, 0, 0, 0, true, 0), message(false, 0, 1, 0, false, 1)},
  };
  std::string problem = simulateInOrderRendezvous(ranks);
  EXPECT_NE(problem.find("deadlock"), std::string::npos) << problem;
  EXPECT_NE(problem.find("stage 0 waits at send of the activation (micro-batch 1"), std::string::npos) << problem;
  EXPECT_NE(problem.find("stage 1 waits at send of the gradient (micro-batch 0"), std::string::npos) << problem;
}

TEST(PipelineMessages, GroupingTheSendWithTheNextRecvResolvesTheDeadlock) {
  std::vector<std::vector<MessageOp>> ranks = {
      {message(true, 1, 1, 0, false, 0), message(false, 1, 0, 0, true, 0)},
      {message(true, 0, 0, 0, true, 0), message(false, 0, 1, 0, false, 0)},
  };
  EXPECT_EQ(simulateInOrderRendezvous(ranks), "");
}

TEST(PipelineMessages, DifferentIssueOrdersCrossTheMessages) {
  // Stage 0 sends micro-batches 0 then 1, stage 1 receives 1 then 0: with tags that works, without it crosses.
  std::vector<std::vector<MessageOp>> ranks = {
      {message(true, 1, 0, 0, false, 0), message(true, 1, 1, 0, false, 1)},
      {message(false, 0, 1, 0, false, 0), message(false, 0, 0, 0, false, 1)},
  };
  std::string problem = simulateInOrderRendezvous(ranks);
  EXPECT_NE(problem.find("mismatch: stage 1's recv of the activation (micro-batch 1"), std::string::npos) << problem;
  EXPECT_NE(problem.find("stage 0's send of the activation (micro-batch 0"), std::string::npos) << problem;
}

TEST(PipelineMessages, DifferentSizesCrossTheMessages) {
  std::vector<std::vector<MessageOp>> ranks = {{message(true, 1, 0, 0, false, 0)}, {message(false, 0, 0, 0, false, 0)}};
  ranks[1][0].identity.elements = 16;
  EXPECT_NE(simulateInOrderRendezvous(ranks).find("mismatch"), std::string::npos);
}

TEST(PipelineMessages, AnUnansweredRecvDeadlocks) {
  std::vector<std::vector<MessageOp>> ranks = {{}, {message(false, 0, 0, 0, false, 0)}};
  std::string problem = simulateInOrderRendezvous(ranks);
  EXPECT_NE(problem.find("stage 1 waits at recv of the activation (micro-batch 0"), std::string::npos) << problem;
  EXPECT_EQ(problem.find("stage 0 waits"), std::string::npos) << problem;
}

TEST(PipelineMessages, ABackwardAndTheForwardAfterItAreOneUnit) {
  // 1F1B, first of two stages, 3 micro-batches: F0 F1 B0 F2 B1 B2.
  std::vector<PipelineStep> schedule = {{true, 0, 0}, {true, 1, 0}, {false, 0, 0},
                                        {true, 2, 0}, {false, 1, 0}, {false, 2, 0}};
  using Units = std::vector<std::pair<size_t, size_t>>;
  EXPECT_EQ(messageUnits(schedule, MessageIssue::GroupedPerBackwardForwardPair),
            (Units{{0, 1}, {1, 2}, {2, 4}, {4, 5}, {5, 6}}));
  EXPECT_EQ(messageUnits(schedule, MessageIssue::GroupedAtProgramBoundaries),
            (Units{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}));
}

/// Stage plans for `schedule` shaped as mt-plan lowers a model split into chunks: each chunk's programs receive
/// the boundary's `values` values from the neighbour chunk, compute, and send theirs on; the first chunk receives
/// nothing forward, the last sends nothing forward and starts its backward from the loss.
std::vector<Plan> stagePlans(const schedule::Schedule &schedule, int values) {
  std::vector<Plan> plans(static_cast<size_t>(schedule.stages));
  const int64_t chunks = int64_t(schedule.stages) * schedule.virtualStages;
  for (int stage = 0; stage < schedule.stages; ++stage) {
    Plan &plan = plans[static_cast<size_t>(stage)];
    plan.pipeline.stages = schedule.stages;
    plan.pipeline.virtualStages = schedule.virtualStages;
    plan.pipeline.stage = stage;
    plan.pipeline.microBatches = schedule.microBatches;
    for (const schedule::Step &step : schedule.steps[static_cast<size_t>(stage)])
      plan.pipeline.schedule.push_back(PipelineStep{step.forward, step.microBatch, step.chunk});
    Buffer buffer;
    buffer.shape = {4, 8};
    buffer.bytes = 4 * 8 * 4;
    plan.buffers.push_back(buffer);
    auto messages = [&](Program &program, const char *op, int64_t peer, bool grad) {
      if (peer < 0 || peer >= chunks)
        return;
      for (int64_t index = 0; index < values; ++index) {
        Step step;
        step.op = op;
        (step.op == "send" ? step.inputs : step.outputs).push_back(0);
        step.attrs = {{"chunk", peer}, {"index", index}, {"grad", grad}};
        program.steps.push_back(step);
      }
    };
    for (int64_t v = 0; v < schedule.virtualStages; ++v) {
      const int64_t c = plan.pipeline.globalChunk(v);
      for (const char *kind : {"train_forward_chunk", "train_backward_chunk", "forward_chunk"}) {
        const bool backward = std::string(kind) == "train_backward_chunk";
        Program program;
        program.name = kind + std::to_string(c);
        messages(program, "recv", backward ? c + 1 : c - 1, backward);
        Step compute;
        compute.op = "matmul";
        program.steps.push_back(compute);
        messages(program, "send", backward ? c - 1 : c + 1, backward);
        plan.programs.push_back(program);
      }
    }
  }
  return plans;
}

struct Case {
  int stages, virtualStages, microBatches;
};

/// 1F1B over 2..8 stages with 1..2p + 1 micro-batches (fewer than the stages too); interleaved over 2, 3, 4 and 8
/// stages with 2..4 chunks each and 1..4 times as many micro-batches as stages.
std::vector<Case> scheduleCases() {
  std::vector<Case> cases;
  for (int p = 2; p <= 8; ++p)
    for (int m = 1; m <= 2 * p + 1; ++m)
      cases.push_back({p, 1, m});
  for (int p : {2, 3, 4, 8})
    for (int v : {2, 3, 4})
      for (int k : {1, 2, 3, 4})
        cases.push_back({p, v, k * p});
  return cases;
}

std::string check(const Case &c, int values, MessageIssue issue) {
  std::string error;
  schedule::Schedule s = schedule::pipelineSchedule(c.stages, c.microBatches, c.virtualStages, error);
  return error.empty() ? checkInOrderMessages(stagePlans(s, values), issue) : error;
}

TEST(PipelineMessages, EverySchedulePassesWithABackwardAndTheNextForwardGrouped) {
  int checked = 0;
  for (const Case &c : scheduleCases())
    for (int values : {1, 2}) {
      SCOPED_TRACE("p=" + std::to_string(c.stages) + " v=" + std::to_string(c.virtualStages) +
                   " m=" + std::to_string(c.microBatches) + " values=" + std::to_string(values));
      EXPECT_EQ(check(c, values, MessageIssue::GroupedPerBackwardForwardPair), "");
      ++checked;
    }
  // 1F1B: sum over p = 2..8 of 2p + 1 micro-batch counts = 77; interleaved: 4 x 3 x 4 = 48; each with 1 and 2 values.
  EXPECT_EQ(checked, 2 * (77 + 48));
}

TEST(PipelineMessages, GroupingAtEachProgramBoundarySuffices1F1BButHangsTheInterleavedRing) {
  for (const Case &c : scheduleCases()) {
    SCOPED_TRACE("p=" + std::to_string(c.stages) + " v=" + std::to_string(c.virtualStages) +
                 " m=" + std::to_string(c.microBatches));
    std::string problem = check(c, 1, MessageIssue::GroupedAtProgramBoundaries);
    if (c.virtualStages == 1 || c.microBatches == c.stages)
      EXPECT_EQ(problem, "");
    else // the last stage's chunk sends its gradient back to the first stage's while every stage does the same
      EXPECT_NE(problem.find("would hang on GPUs"), std::string::npos);
  }
}

TEST(PipelineMessages, OneForwardOneBackwardHangsWhenEveryMessageIsIssuedAlone) {
  // The steady state: stage 0 ends forward 1 with its send while stage 1 ends backward 0 with its own; both wait.
  std::string error;
  schedule::Schedule s = schedule::pipelineSchedule(2, 4, 1, error);
  ASSERT_EQ(error, "");
  std::string problem = checkInOrderMessages(stagePlans(s, 1), MessageIssue::OneByOne);
  EXPECT_NE(problem.find("would hang on GPUs"), std::string::npos) << problem;
  EXPECT_NE(problem.find("stage 0 waits at send of the activation (micro-batch 1, chunks 0->1"), std::string::npos)
      << problem;
  EXPECT_NE(problem.find("stage 1 waits at send of the gradient (micro-batch 0, chunks 1->0"), std::string::npos)
      << problem;
}

TEST(PipelineMessages, EveryScheduleOfSeveralMicroBatchesHangsWhenEveryMessageIsIssuedAlone) {
  for (const Case &c : scheduleCases()) {
    SCOPED_TRACE("p=" + std::to_string(c.stages) + " v=" + std::to_string(c.virtualStages) +
                 " m=" + std::to_string(c.microBatches));
    std::string problem = check(c, 1, MessageIssue::OneByOne);
    if (c.microBatches == 1) // one micro-batch goes down the stages and back: nothing to cross
      EXPECT_EQ(problem, "");
    else
      EXPECT_NE(problem.find("would hang on GPUs"), std::string::npos);
  }
}

TEST(PipelineMessages, AScheduleWhosePeersDisagreeIsRefused) {
  // Stage 1 runs its forwards in another order than stage 0 sends them: crossed, named with both messages.
  std::string error;
  schedule::Schedule s = schedule::pipelineSchedule(2, 4, 1, error);
  ASSERT_EQ(error, "");
  std::vector<Plan> plans = stagePlans(s, 1);
  std::vector<PipelineStep> &last = plans[1].pipeline.schedule;
  ASSERT_TRUE(last[0].forward && last[2].forward);
  std::swap(last[0].microBatch, last[2].microBatch);
  std::swap(last[1].microBatch, last[3].microBatch);
  std::string problem = checkInOrderMessages(plans);
  EXPECT_NE(problem.find("would deliver a message to the wrong recv"), std::string::npos) << problem;
  EXPECT_NE(problem.find("stage 1's recv of the activation (micro-batch 1"), std::string::npos) << problem;
}

TEST(PipelineMessages, AMissingProgramIsNamed) {
  std::string error;
  std::vector<Plan> plans = stagePlans(schedule::pipelineSchedule(2, 2, 1, error), 1);
  plans[1].programs.erase(plans[1].programs.begin());
  EXPECT_EQ(checkInOrderMessages(plans), "stage 1 has no program train_forward_chunk1 that its schedule runs");
}

} // namespace
