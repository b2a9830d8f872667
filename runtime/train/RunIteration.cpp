//===- RunIteration.cpp - An iteration's micro-batches, and evaluation ---===//
//
// The forward and backward passes of an iteration (through the pipeline schedule under pipeline parallelism),
// the loss over the replicas and stages, and the validation loss (Run.h).
//
//===----------------------------------------------------------------------===//

#include "Run.h"

#include "megatron/Plan/PipelineMessages.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace megatron::train {

std::string Run::feed(const data::GptBatch &batch) {
  std::copy(batch.tokens.begin(), batch.tokens.end(), engine->as<int32_t>(inputs.tokens));
  std::copy(batch.labels.begin(), batch.labels.end(), engine->as<int32_t>(inputs.labels));
  std::copy(batch.lossMask.begin(), batch.lossMask.end(), engine->as<float>(inputs.lossMask));
  for (int id : {inputs.tokens, inputs.labels, inputs.lossMask})
    if (std::string error = compute->toDevice(id); !error.empty())
      return "copying the micro-batch's inputs: " + error;
  return {};
}

std::string Run::addLoss(const std::string &name, double &sum) {
  double value = 0;
  std::string error = compute->loss(name, value);
  sum += value;
  return error;
}

std::string Run::trainIteration(int64_t iteration, double &loss, double &gradNorm) {
  if (std::string error = compute->zeroGradients(); !error.empty())
    return "iteration " + std::to_string(iteration) + ": zeroing the gradients: " + error;
  // The iteration's global micro-batch g holds samples [first + g * size, first + (g + 1) * size) and draws its
  // dropout masks from g, whatever the layout: a data-parallel rank runs its share of them, exactly as the
  // single-rank run does.
  const uint64_t first = train->state();
  double sum = 0;
  if (stages)
    if (std::string error = runPipelineSchedule(iteration, first, sum); !error.empty())
      return error;
  for (int64_t m = 0; !stages && m < microBatches; ++m) {
    int64_t g = dpRank * microBatches + m;
    std::string error = feed(train->batch(first + static_cast<uint64_t>(g * microBatchSize)));
    runtime::RunContext context{true, runtime::dropoutSeedFor(opts.seed, iteration, g)};
    context.lossScale = scaler ? scaler->scale() : 1.0;
    if (error.empty())
      error = compute->run("train_step", context);
    if (error.empty())
      error = addLoss("train_step", sum);
    if (!error.empty())
      return "iteration " + std::to_string(iteration) + ", micro-batch " + std::to_string(g) + ": " + error;
  }
  train->restore(first + static_cast<uint64_t>(globalMicroBatches * microBatchSize));
  // The mean over all the iteration's micro-batches: the replicas' sums added.
  if (replicas && dpSize > 1)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "iteration " + std::to_string(iteration) + ": the loss: " + error;
  if (std::string error = shareOverStages(sum); !error.empty())
    return "iteration " + std::to_string(iteration) + ": the loss: " + error;
  loss = sum / static_cast<double>(globalMicroBatches);
  // Every rank has the same loss (the vocab-parallel loss is all-reduced, the replicas' sums too); rank 0 judges
  // it, and the others stop at their next collective.
  if (leader && !std::isfinite(loss) && !scaler) // with a loss scaler the step is skipped instead (below)
    return "iteration " + std::to_string(iteration) + ": the loss is " + std::to_string(loss) +
           "; lower --lr or raise --lr-warmup-iters";
  // Gradients that are partial sums over the ranks (norms under sequence parallelism, shared key/value heads), and
  // the replicas' gradients summed over the data-parallel group.
  if (hasFinalizeGrads)
    if (std::string error = compute->run("finalize_grads", runtime::RunContext{true, 0}); !error.empty())
      return "iteration " + std::to_string(iteration) + ": " + error;
  return optimizerStep(iteration, gradNorm);
}

std::string Run::runPipelineSchedule(int64_t iteration, uint64_t first, double &sum) {
  // The compiler's order for this stage. A forward takes a free stash slot for its micro-batch and chunk, and
  // its backward gives it back; the inputs are fed again before each step, since other micro-batches ran between
  // (each micro-batch is read once per iteration, at its first step).
  const plan::PipelineInfo &pipeline = engine->plan().pipeline;
  const bool lastStage = stage == pipeline.stages - 1;
  plan::StashSlots slots(pipeline);
  std::vector<std::optional<data::GptBatch>> batches(static_cast<size_t>(microBatches));
  auto runStep = [&](const plan::PipelineStep &step) -> std::string {
    int64_t g = dpRank * microBatches + step.microBatch;
    std::string chunk = std::to_string(pipeline.globalChunk(step.chunk));
    auto where = [&] {
      return "iteration " + std::to_string(iteration) + ", micro-batch " + std::to_string(g) + ", chunk " + chunk +
             (step.forward ? " forward: " : " backward: ");
    };
    const int slot = slots.acquire(step);
    if (slot < 0)
      return where() + (step.forward ? "no free stash slot: the schedule holds more micro-batches than the plan "
                                       "provides"
                                     : "the schedule runs a backward before its forward");
    peakSlotsHeld = std::max(peakSlotsHeld, slots.peak());
    std::optional<data::GptBatch> &batch = batches[static_cast<size_t>(step.microBatch)];
    if (!batch)
      batch = train->batch(first + static_cast<uint64_t>(g * microBatchSize));
    runtime::RunContext context{true, runtime::dropoutSeedFor(opts.seed, iteration, g)};
    context.microBatch = step.microBatch;
    context.stashSlot = slot;
    context.lossScale = scaler ? scaler->scale() : 1.0;
    std::string name = pipeline.trainingProgram(step);
    std::string error = feed(*batch);
    if (error.empty())
      error = compute->run(name, context);
    if (error.empty() && step.forward && lastStage && pipeline.globalChunk(step.chunk) == pipeline.numChunks() - 1)
      error = addLoss(name, sum);
    if (!error.empty())
      return where() + error;
    if (!step.forward)
      slots.release(step);
    return {};
  };
  // The CPU's communicators are tagged and their sends do not wait for the receiver: every message step goes alone,
  // as its program runs. NCCL's are neither (docs/parallelism.md, "Messages"), so a device issues its messages in
  // the units that mt-plan checked: before each unit one group of the previous unit's trailing sends and the unit's
  // leading recvs, and after the last unit the held sends, before finalize_grads and the loss sum.
  const std::vector<std::pair<size_t, size_t>> units = plan::messageUnits(
      pipeline.schedule, device ? plan::MessageIssue::GroupedPerBackwardForwardPair : plan::MessageIssue::OneByOne);
  for (auto [begin, end] : units) {
    if (device) {
      std::vector<device::DeviceEngine::ScheduledRun> unit;
      for (size_t k = begin; k < end; ++k)
        unit.push_back({pipeline.trainingProgram(pipeline.schedule[k]), pipeline.schedule[k].microBatch});
      if (std::string error = device->exchange(unit); !error.empty())
        return "iteration " + std::to_string(iteration) + ": " + error;
    }
    for (size_t k = begin; k < end; ++k)
      if (std::string error = runStep(pipeline.schedule[k]); !error.empty())
        return error;
  }
  if (device)
    if (std::string error = device->flushMessages(); !error.empty())
      return "iteration " + std::to_string(iteration) + ": " + error;
  return {};
}

std::string Run::shareOverStages(double &sum) {
  if (!stages)
    return {};
  return stages->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum);
}

std::string Run::evaluate(double &loss) {
  // The same validation samples every time, so that the points of the curve compare: --eval-iters global
  // batches, of which each data-parallel rank evaluates its consecutive share; the replicas' sums are added.
  int64_t batches = opts.evalIters * globalMicroBatches, size = engine->buffer(inputs.tokens).shape[0];
  int64_t share = batches / dpSize;
  double sum = 0;
  // Under pipeline parallelism each micro-batch passes through the stage's chunks in order; the last holds the loss.
  const plan::PipelineInfo &pipeline = engine->plan().pipeline;
  std::vector<std::string> programs;
  for (int64_t v = 0; stages && v < pipeline.virtualStages; ++v)
    programs.push_back("forward_chunk" + std::to_string(pipeline.globalChunk(v)));
  if (!stages)
    programs.push_back("forward");
  const bool holdsLoss = !stages || stage == pipeline.stages - 1;
  for (int64_t i = dpRank * share; i < (dpRank + 1) * share; ++i) {
    if (std::string error = feed(validation->batch(static_cast<uint64_t>(i * size))); !error.empty())
      return "evaluation: " + error;
    runtime::RunContext context{false, 0};
    context.microBatch = i;
    for (const std::string &name : programs)
      if (std::string error = compute->run(name, context); !error.empty())
        return "evaluation: " + error;
    if (holdsLoss)
      if (std::string error = addLoss(programs.back(), sum); !error.empty())
        return "evaluation: " + error;
  }
  if (replicas && dpSize > 1)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "evaluation: " + error;
  if (std::string error = shareOverStages(sum); !error.empty())
    return "evaluation: " + error;
  loss = sum / static_cast<double>(batches);
  return {};
}

} // namespace megatron::train
