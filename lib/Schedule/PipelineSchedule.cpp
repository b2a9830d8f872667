//===- PipelineSchedule.cpp - Pipeline schedules and their timelines --------===//
//
// The orders follow Megatron-LM's schedules.py (forward_backward_pipelining_without_interleaving and
// _with_interleaving), so the bubble and the activation memory are the ones Megatron users know.
//
//===----------------------------------------------------------------------===//

#include "megatron/Schedule/PipelineSchedule.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

namespace megatron::schedule {

Schedule oneForwardOneBackward(int stages, int microBatches) {
  Schedule schedule{stages, microBatches, 1, std::vector<std::vector<Step>>(static_cast<size_t>(stages))};
  for (int s = 0; s < stages; ++s) {
    std::vector<Step> &steps = schedule.steps[static_cast<size_t>(s)];
    int warmup = std::min(stages - s - 1, microBatches);
    for (int j = 0; j < warmup; ++j)
      steps.push_back({true, j, 0});
    for (int i = 0; i < microBatches - warmup; ++i) {
      steps.push_back({true, warmup + i, 0});
      steps.push_back({false, i, 0});
    }
    for (int j = microBatches - warmup; j < microBatches; ++j)
      steps.push_back({false, j, 0});
  }
  return schedule;
}

Schedule interleaved(int stages, int microBatches, int virtualStages, std::string &error) {
  if (stages < 1 || microBatches < 1 || virtualStages < 1 || microBatches % stages != 0) {
    error = "the interleaved schedule needs the number of micro-batches (" + std::to_string(microBatches) +
            ") to be a multiple of the pipeline stages (" + std::to_string(stages) + ")";
    return {};
  }
  const int p = stages, v = virtualStages, total = microBatches * virtualStages;
  // Virtual micro-batch k: micro-batches go through the chunks in groups of p (Megatron's get_model_chunk_id).
  auto step = [&](int k, bool forward) {
    int chunk = (k / p) % v;
    return Step{forward, (k / (p * v)) * p + k % p, forward ? chunk : v - 1 - chunk};
  };
  Schedule schedule{stages, microBatches, virtualStages, std::vector<std::vector<Step>>(static_cast<size_t>(p))};
  for (int s = 0; s < p; ++s) {
    int warmup = microBatches == p ? total : std::min((p - s - 1) * 2 + (v - 1) * p, total);
    std::vector<Step> &steps = schedule.steps[static_cast<size_t>(s)];
    for (int k = 0; k < warmup; ++k)
      steps.push_back(step(k, true));
    for (int i = 0; i < total - warmup; ++i) {
      steps.push_back(step(warmup + i, true));
      steps.push_back(step(i, false));
    }
    for (int k = total - warmup; k < total; ++k)
      steps.push_back(step(k, false));
  }
  return schedule;
}

Timeline simulate(const Schedule &schedule, double forwardTime, double backwardTime, std::string &error) {
  const int p = schedule.stages, v = schedule.virtualStages;
  using Key = std::tuple<int, bool, int, int>; // stage, forward, chunk, micro-batch
  std::map<Key, double> finished;
  // The step whose result `step` on `stage` needs, if any: the previous virtual stage's forward, or the next
  // virtual stage's backward (the last virtual stage's backward follows its own forward).
  auto dependency = [&](int stage, const Step &step, Key &key) {
    int j = step.microBatch, c = step.chunk;
    if (step.forward) {
      if (stage > 0)
        key = {stage - 1, true, c, j};
      else if (c > 0)
        key = {p - 1, true, c - 1, j};
      else
        return false;
    } else {
      if (stage < p - 1)
        key = {stage + 1, false, c, j};
      else if (c < v - 1)
        key = {0, false, c + 1, j};
      else
        key = {stage, true, c, j};
    }
    return true;
  };

  Timeline timeline;
  std::vector<size_t> next(static_cast<size_t>(p), 0);
  std::vector<double> free(static_cast<size_t>(p), 0.0);
  size_t remaining = 0;
  for (const auto &steps : schedule.steps)
    remaining += steps.size();
  while (remaining > 0) {
    bool progressed = false;
    for (int s = 0; s < p; ++s) {
      const std::vector<Step> &steps = schedule.steps[static_cast<size_t>(s)];
      size_t &i = next[static_cast<size_t>(s)];
      while (i < steps.size()) {
        const Step &step = steps[i];
        Key key;
        double ready = 0.0;
        if (dependency(s, step, key)) {
          auto done = finished.find(key);
          if (done == finished.end())
            break; // waits for another stage
          ready = done->second;
        }
        double start = std::max(free[static_cast<size_t>(s)], ready);
        double end = start + (step.forward ? forwardTime : backwardTime) / v;
        finished[{s, step.forward, step.chunk, step.microBatch}] = end;
        free[static_cast<size_t>(s)] = end;
        timeline.steps.push_back({step, s, start, end});
        ++i;
        --remaining;
        progressed = true;
      }
    }
    if (!progressed) {
      error = "the schedule deadlocks: every stage waits for a step another stage has not run";
      return {};
    }
  }

  double busy = 0.0;
  for (const TimedStep &t : timeline.steps) {
    timeline.makespan = std::max(timeline.makespan, t.end);
    busy += t.end - t.start;
  }
  timeline.bubbleFraction = timeline.makespan > 0 ? 1.0 - busy / (p * timeline.makespan) : 0.0;
  for (const auto &steps : schedule.steps) {
    int alive = 0, peak = 0;
    for (const Step &step : steps) {
      alive += step.forward ? 1 : -1;
      peak = std::max(peak, alive);
    }
    timeline.peakInFlight.push_back(static_cast<double>(peak) / v);
  }
  return timeline;
}

std::string chromeTrace(const Timeline &timeline, double microsecondsPerUnit) {
  std::string out = "{\"traceEvents\": [\n";
  int stages = 0;
  for (const TimedStep &t : timeline.steps)
    stages = std::max(stages, t.stage + 1);
  char line[256];
  for (int s = 0; s < stages; ++s) {
    std::snprintf(line, sizeof line,
                  "  {\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 0, \"tid\": %d, \"args\": {\"name\": "
                  "\"stage %d\"}},\n",
                  s, s);
    out += line;
  }
  for (size_t i = 0; i < timeline.steps.size(); ++i) {
    const TimedStep &t = timeline.steps[i];
    std::snprintf(line, sizeof line,
                  "  {\"name\": \"%s%d.%d\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": 0, \"tid\": %d, \"ts\": %.3f, "
                  "\"dur\": %.3f}%s\n",
                  t.step.forward ? "F" : "B", t.step.microBatch, t.step.chunk,
                  t.step.forward ? "forward" : "backward", t.stage, t.start * microsecondsPerUnit,
                  (t.end - t.start) * microsecondsPerUnit, i + 1 < timeline.steps.size() ? "," : "");
    out += line;
  }
  return out + "]}\n";
}

Schedule pipelineSchedule(int stages, int microBatches, int virtualStages, std::string &error) {
  return virtualStages > 1 ? interleaved(stages, microBatches, virtualStages, error)
                           : oneForwardOneBackward(stages, microBatches);
}

} // namespace megatron::schedule
