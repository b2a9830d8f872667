//===- PipelineSchedule.h - Pipeline schedules and their timelines -*- C++ -*-===//
//
// The order in which each pipeline stage runs the forward and backward passes of an iteration's micro-batches:
// 1F1B (PipeDream-flush) and the interleaved 1F1B of Narayanan et al. 2021 with virtual stages, as Megatron-LM
// orders them. A schedule is simulated on a cost per stage to give its timeline, its bubble (idle) fraction, how
// many micro-batches' activations each stage holds at its peak, and a Chrome trace of it. MLIR-free: the compiler
// reports from it and the runtime will execute the same order.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_SCHEDULE_PIPELINESCHEDULE_H
#define MEGATRON_SCHEDULE_PIPELINESCHEDULE_H

#include <cstdint>
#include <string>
#include <vector>

namespace megatron::schedule {

/// One pass of one micro-batch through one model chunk of a stage. With v virtual stages, stage s holds chunks
/// 0..v-1, chunk c being the layers of virtual stage c·p + s.
struct Step {
  bool forward = true;
  int microBatch = 0;
  int chunk = 0;
  bool operator==(const Step &other) const {
    return forward == other.forward && microBatch == other.microBatch && chunk == other.chunk;
  }
};

/// Each stage's steps in execution order.
struct Schedule {
  int stages = 1;
  int microBatches = 1;
  int virtualStages = 1; // model chunks per stage; 1 is plain 1F1B
  std::vector<std::vector<Step>> steps; // [stage]
};

/// 1F1B: stage s runs min(p - s - 1, m) warm-up forwards, then alternates one forward and one backward, then
/// drains the remaining backwards. At most p - s micro-batches' activations are alive on stage s.
Schedule oneForwardOneBackward(int stages, int microBatches);

/// Interleaved 1F1B with `virtualStages` chunks per stage (Megatron-LM's forward_backward_pipelining_with_
/// interleaving): micro-batches go through the chunks in groups of p. Needs microBatches to be a multiple of
/// stages; returns an empty schedule (and sets `error`) otherwise.
Schedule interleaved(int stages, int microBatches, int virtualStages, std::string &error);

/// The schedule a pipeline of `virtualStages` chunks per stage runs: 1F1B for one, interleaved for more. Empty,
/// with `error` set, where the interleaved schedule cannot order `microBatches`.
Schedule pipelineSchedule(int stages, int microBatches, int virtualStages, std::string &error);

/// A step placed in time.
struct TimedStep {
  Step step;
  int stage = 0;
  double start = 0, end = 0;
};

/// What a schedule costs when every chunk's forward takes forwardTime / v and its backward backwardTime / v (the
/// times of a whole stage for one micro-batch), and a step starts when its stage is free and its input has
/// arrived (the previous virtual stage's forward, the next one's backward; communication is not counted).
struct Timeline {
  std::vector<TimedStep> steps;
  double makespan = 0;
  /// Idle time over stages × makespan: (p - 1) / (m + p - 1) for 1F1B, (p - 1) / (v·m + p - 1) interleaved.
  double bubbleFraction = 0;
  /// Per stage, the most micro-batches whose activations are alive at once, in whole-stage units (a chunk's
  /// forward holds 1/v of the stage's layers): p - s for 1F1B; on the first stage of the interleaved schedule
  /// p·(1 + (p - 1)/(p·v)) (Korthikanti et al. 2022).
  std::vector<double> peakInFlight;
};

/// Simulates `schedule`. Fails (empty timeline, `error` set) if the order deadlocks: a step waiting for one its
/// stage has not run yet.
Timeline simulate(const Schedule &schedule, double forwardTime, double backwardTime, std::string &error);

/// The timeline as Chrome trace JSON (chrome://tracing, Perfetto): one row per stage, times in microseconds.
std::string chromeTrace(const Timeline &timeline, double microsecondsPerUnit);

} // namespace megatron::schedule

#endif // MEGATRON_SCHEDULE_PIPELINESCHEDULE_H
