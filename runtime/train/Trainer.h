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

namespace megatron::comm {
class Communicator;
} // namespace megatron::comm

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
  // --device: "cpu", "cuda" (every rank's programs and optimizer step on a device backend that runTraining's
  // factory makes), or "auto" (cuda where every rank gets a backend and the plan runs on the device, else the CPU).
  std::string device = "cpu";
  double distributedTimeoutMinutes = 10; // a collective's longest wait (ranks as threads, NCCL; MPI has none)
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

/// Makes a device backend of a --device cuda or auto run on device `device`: the GPU's (megatron-run), or the host
/// simulator's (the tests). Called once per rank of this process: for ranks as threads, every rank gets its own
/// backend (on a GPU, its own stream) on device 0, which they share; for ranks as processes (mpirun, srun,
/// torchrun) the process's one backend on the device of its local rank. Null and `error` when there is none
/// ("no CUDA device: ...").
using DeviceBackendFactory = std::function<std::unique_ptr<device::DeviceBackend>(int device, std::string &error)>;

/// Ranks as processes on devices: the communicator over all ranks whose buffers are device pointers of `backend`
/// (megatron-run: NCCL, cuda::createNcclWorld), bootstrapped over the launcher's host world; collective over
/// `hostWorld`. Null and `error` when it cannot be made. An empty factory refuses multi-process device runs.
using DeviceWorldFactory = std::function<std::unique_ptr<comm::Communicator>(
    comm::Communicator &hostWorld, device::DeviceBackend &backend, std::string &error)>;

/// Ranks as threads on one device: rank `rank`'s communicator over the same-device world passes through this before
/// the rank splits its groups off it (the tests give its point-to-point calls NCCL's semantics,
/// test/unit/cuda/InOrderP2PCommunicator.h). The result is used by that rank's thread only; null: `world` itself.
using DeviceWorldWrapper =
    std::function<std::unique_ptr<comm::Communicator>(int rank, comm::Communicator &world)>;

/// Runs training (and generation) as the options say, on the CPU or, for --device cuda and auto, on backends from
/// `makeBackend` (docs/cuda.md, "Training on the device"): ranks as threads share one device through a same-device
/// world (runtime/device/SameDeviceCommunicator.h); ranks as processes join their devices with `connectDevices`.
/// Prints the log to standard output and errors to standard error; returns the process exit code (0, or 1 with a
/// message).
int runTraining(const TrainOptions &options, const DeviceBackendFactory &makeBackend = {},
                const DeviceWorldFactory &connectDevices = {}, const DeviceWorldWrapper &wrapDeviceWorld = {});

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_TRAINER_H
