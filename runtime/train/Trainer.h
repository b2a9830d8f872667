//===- Trainer.h - The training loop of megatron-run ------------*- C++ -*-===//
//
// Reads like llm.c's loop: load the plan, initialise or load the parameters, then for each iteration zero the
// gradients, run the micro-batches, clip, step AdamW, log, evaluate and save. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_TRAINER_H
#define MEGATRON_RUNTIME_TRAIN_TRAINER_H

#include "LrSchedule.h"

#include "runtime/train/LossScaler.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace megatron::device {
class DeviceBackend;
} // namespace megatron::device

namespace megatron::train {

/// megatron-run's options, with Megatron-LM's names and defaults.
struct TrainOptions {
  std::string plan;
  int64_t trainIters = 0;
  LrSchedule schedule;
  double adamBeta1 = 0.9, adamBeta2 = 0.999, adamEps = 1e-8, weightDecay = 0.01;
  double clipGrad = 1.0;
  int64_t logInterval = 100, evalInterval = 1000, evalIters = 100;
  uint64_t seed = 1234;
  std::string save, load;
  int64_t saveInterval = 0;
  int64_t exitInterval = 0; // stop (saving, with --save) after an iteration divisible by this
  int threads = 0;          // 0: every core
  // --device: "cpu", "cuda" (the programs on the device backend that runTraining's factory makes; one rank only),
  // or "auto" (cuda where a backend can be made and the plan has one rank, else the CPU).
  std::string device = "cpu";
  double distributedTimeoutMinutes = 10; // a collective's longest wait (ranks as threads; MPI has no timeout)
  std::vector<std::string> dataPath; // Megatron's --data-path: a prefix, or weight prefix pairs; empty: built-in
  std::string split = "969, 30, 1"; // --split: train, validation, test weights
  std::string vocabFile, mergeFile; // GPT-2's tokenizer files, to decode generated text from --data-path data
  std::string dataCachePath;        // --data-cache-path: where the sample indices are cached ("none": nowhere)
  double lossFloor = -1;            // --loss-floor: a known lower bound on --data-path data's loss; < 0: unknown
  LossScaleOptions lossScale;       // fp16's loss scaling (--loss-scale, --initial-loss-scale, ...)
  std::string lossCurve;    // an SVG of the loss curve, written at the end
  std::string lossLog;      // a CSV of every iteration: loss (exact, %.17g), learning rate, gradient norm
  int progress = -1;        // live progress line: -1 when stdout is a terminal, 0 never, 1 always
  // Generation after training (or from --load alone).
  int generate = 0;         // samples to print
  int generateTokens = 0;   // tokens per sample (0: what the sequence length allows)
  double temperature = 1.0;
  int topK = 0;
  double topP = 1.0;
  bool greedy = false;
};

/// Problems with the options, each naming its flag. `trainIters` may be 0 only to generate from --load.
std::vector<std::string> validate(const TrainOptions &options);

/// Makes the device backend of a --device cuda or auto run: the GPU's (megatron-run), or the host simulator's
/// (the tests). Null and `error` when there is none ("no CUDA device: ...").
using DeviceBackendFactory = std::function<std::unique_ptr<device::DeviceBackend>(std::string &error)>;

/// Runs training (and generation) as the options say, on the CPU or, for --device cuda and auto, on a backend from
/// `makeBackend` (called once, for a plan of one rank). Prints the log to standard output and errors to standard
/// error; returns the process exit code (0, or 1 with a message).
int runTraining(const TrainOptions &options, const DeviceBackendFactory &makeBackend = {});

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_TRAINER_H
