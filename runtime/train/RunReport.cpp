//===- RunReport.cpp - What a run prints ---------------------------------===//
//
// The progress line, Megatron's log line per --log-interval, and the memory report (Run.h).
//
//===----------------------------------------------------------------------===//

#include "Run.h"

#include <algorithm>

namespace megatron::train {

void Run::reportMemory() {
  // The plan's figure (every stash slot the schedule needs) beside the measured one: the persistent arenas, the
  // activations arena and kernel workspace, plus the stash slots this rank actually held at once.
  const plan::Plan &plan = engine->plan();
  int64_t planned = engine->allocatedBytes();
  int64_t measured = planned - (plan.pipeline.stashSlots - peakSlotsHeld) * engine->stashSlotBytes();
  std::printf("memory of pipeline stage %d (tensor rank 0, replica 0): planned %s with %lld micro-batch chunks' stash "
              "in flight, measured peak %s with %lld (%.1f%% of planned)\n",
              stage, mebibytes(planned).c_str(), static_cast<long long>(plan.pipeline.stashSlots),
              mebibytes(measured).c_str(), static_cast<long long>(peakSlotsHeld),
              100.0 * static_cast<double>(measured) / static_cast<double>(planned));
}

void Run::progress(int64_t iteration, double loss) {
  if (!leader || !shared.showProgress)
    return;
  int width = 30;
  int done = static_cast<int>(width * iteration / std::max<int64_t>(opts.trainIters, 1));
  std::printf("\r [%s%s] %lld/%lld  loss %.4f  %s", std::string(done, '#').c_str(),
              std::string(width - done, ' ').c_str(), static_cast<long long>(iteration),
              static_cast<long long>(opts.trainIters), loss, floorText("(floor ", ") ").c_str());
  std::fflush(stdout);
  shared.progressShown = true;
}

void Run::log(int64_t iteration, double loss, double gradNorm, double lr, double seconds, double commSeconds,
              int64_t iterations) {
  if (!leader)
    return;
  if (shared.progressShown) {
    std::printf("\r%*s\r", 80, "");
    shared.progressShown = false;
  }
  double perIteration = seconds / std::max<int64_t>(iterations, 1);
  std::printf(" iteration %8lld/%8lld | consumed samples: %10lld | elapsed time per iteration (ms): %.1f | "
              "tokens/s: %.0f | learning rate: %.3E | lm loss: %.6E | grad norm: %.3f%s",
              static_cast<long long>(iteration), static_cast<long long>(opts.trainIters),
              static_cast<long long>(train->state()), perIteration * 1000.0, batchTokens / perIteration, lr, loss,
              gradNorm, floorText(" | floor: ", "").c_str());
  if (scaler) { // Megatron's fields
    std::printf(" | loss scale: %.1f | number of skipped iterations: %3lld", scaler->scale(),
                static_cast<long long>(intervalSkipped));
    intervalSkipped = 0;
  }
  if (timesCommunication()) // rank 0's time inside collectives, waiting for the other ranks included
    std::printf(" | communication (ms): %.1f", commSeconds / std::max<int64_t>(iterations, 1) * 1000.0);
  std::printf("\n");
  std::fflush(stdout);
}

} // namespace megatron::train
