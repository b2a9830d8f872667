//===- DeviceOptimizer.h - Megatron's optimizer step on the device -*- C++ -*-===//
//
// What megatron-run's trainer does after an iteration's micro-batches (runtime/train, Run::trainIteration), with
// the code generator's optimizer kernels (codegen::optimizerKernels) on a DeviceEngine's buffers: the global
// gradient norm (each gradient's sum of squares in double, added in parameter order, as cpu::sumOfSquares over the
// CPU's gradients), clipping by clip / (norm + 1e-6) when that is below 1 (Megatron's --clip-grad), and AdamW on
// every parameter with torch.optim.AdamW's scalars computed on the host in double, as cpu::adamwStep computes them.
// A rank of a parallel run counts its share of the global norm and adds the ranks' shares over its groups
// (NormShare). Under the distributed optimizer (ZeRO-1, Megatron's --use-distributed-optimizer) the step is the CPU
// trainer's on the device: the gradients arena reduce-scattered over the data-parallel group (each replica
// receiving its chunk, ReplicaChunk.h), the norm over the chunks, clipping of the chunk, AdamW on the chunk's pieces
// with the optimizer_shard's flat moments, and the parameters arena all-gathered. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_DEVICEOPTIMIZER_H
#define MEGATRON_RUNTIME_DEVICE_DEVICEOPTIMIZER_H

#include "runtime/comm/Communicator.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/ReplicaChunk.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace megatron::device {

/// One AdamW step's settings (cpu::AdamWConfig's fields): the learning rate of this step, the betas, eps, the
/// weight decay and the step number t (from 1).
struct AdamWSettings {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01;
  int64_t step = 1;
};

/// A rank's share of a parallel run's global gradient norm, as megatron-run's trainer counts it (each element of
/// the whole model once: runtime/train/Shards.h's ownedRuns on the first replica, a tied parameter's copy on its
/// first stage only), and the groups that add the ranks' sums of squares.
struct NormShare {
  /// Per parameter of the plan, in order: the runs (first element, count) of its gradient that this rank counts.
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> runs;
  /// The groups over which the ranks' sums are added, in this order (the trainer's: tensor, data, pipeline): each
  /// an all-reduce of the device's running total (one f64, rank order), so every rank clips with the same bits.
  std::vector<comm::Communicator *> groups;
};

class DeviceOptimizer {
public:
  /// Prepares the plan's optimizer kernels on `backend` and the norm's device workspace. `engine` and `backend`
  /// must outlive it. Without `share`, every element of every gradient counts once and no group is involved (one
  /// rank); with one, its runs must lie within the gradients and name every parameter. A plan compiled with the
  /// distributed optimizer steps this replica's chunk: `replicas` is the data-parallel group on the device (null:
  /// one replica), and the share's runs are those the rank counts as if it held the whole gradients (every replica
  /// gives them; each counts their part in its chunk).
  static std::unique_ptr<DeviceOptimizer> create(DeviceEngine &engine, DeviceBackend &backend, std::string &error,
                                                 std::optional<NormShare> share = std::nullopt,
                                                 comm::Communicator *replicas = nullptr);
  ~DeviceOptimizer();
  DeviceOptimizer(const DeviceOptimizer &) = delete;
  DeviceOptimizer &operator=(const DeviceOptimizer &) = delete;

  /// The gradient norm into `norm` (one copy to the host; over the share's groups first), clipping when
  /// clipGrad > 0, then AdamW on this rank's parameters. "" or an error. With fp16's loss scale
  /// (runtime/train/LossScaler) the gradients are first divided by `lossScale`. Under a loss scaler (`skipped`
  /// given, whatever the scale, 1 included) a non-finite norm means an overflow somewhere (every element's square
  /// is in the sum), and the step is skipped, as Megatron skips it: `skipped` is set and nothing is updated.
  /// Without one, a non-finite norm is an error.
  std::string step(const AdamWSettings &adam, double clipGrad, double &norm, double lossScale = 1.0,
                   bool *skipped = nullptr);

private:
  DeviceOptimizer(DeviceEngine &engine, DeviceBackend &backend) : engine(engine), backend(backend) {}
  /// One launch: a work list of the optimizer kernels (codegen::appendAdamwItems, appendSpanItems), stored in
  /// `listWords` on the device from word `first`, and the kernel that runs it.
  struct WorkList {
    const codegen::CudaKernel *kernel = nullptr;
    std::int64_t first = 0;
    std::int64_t count = 0; // items
  };
  /// The lists of `op`, one per storage-type key, from `words` (per key), appended to `hostWords`; an error when
  /// no kernel serves a key.
  std::string addLists(const std::string &op, std::map<std::vector<plan::DType>, std::vector<long long>> words,
                       std::vector<WorkList> &lists, std::vector<long long> &hostWords);
  /// Every list made once at creation (the buffers never move) and copied to the device.
  std::string makeLists();
  /// Every list of `lists` launched, with `values` holding the kernels' other arguments by name.
  template <typename Values> std::string launchLists(const std::vector<WorkList> &lists, Values values);

  DeviceEngine &engine;
  DeviceBackend &backend;
  std::vector<codegen::CudaKernel> kernels;
  std::optional<NormShare> share;
  // The distributed optimizer: this replica's chunk, its group, the flat arenas and the flat moments (f32).
  std::optional<ReplicaChunk> chunk;
  comm::Communicator *replicas = nullptr;
  float *flatParams = nullptr, *flatGrads = nullptr, *shardExpAvg = nullptr, *shardExpAvgSq = nullptr;
  double *partial = nullptr, *total = nullptr; // device: the blocks' partial sums, the running total
  long long *listWords = nullptr;               // device: every work list's words
  std::vector<WorkList> unscaleLists;           // every gradient (fp16's loss scale)
  std::vector<WorkList> clipLists;              // the gradients clipping scales: every one, or the chunk
  std::vector<WorkList> squareLists;            // the norm's runs: the share's, every gradient, or the chunk's
  std::vector<WorkList> adamLists;              // every parameter, or the chunk's pieces
  const codegen::CudaKernel *finishSquares = nullptr; // adds the partial sums of squares onto the total
};

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_DEVICEOPTIMIZER_H
