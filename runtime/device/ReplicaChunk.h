//===- ReplicaChunk.h - A replica's chunk under the distributed optimizer -*- C++ -*-===//
//
// The distributed optimizer (ZeRO-1, Megatron's --use-distributed-optimizer; plan::OptimizerShard) sees the params
// and grads arenas, laid out alike, as one flat f32 buffer padded to `dpSize` chunks of plan::distributedOptimizerChunk
// elements: replica r reduce-scatters the gradients, updates flat elements [r * chunk, (r + 1) * chunk) and
// all-gathers the parameters. This is that chunk worked out from the plan alone: the parameters' pieces in it, and
// the flat runs of it this rank counts in the global gradient norm. Both steps use it, so that they chunk and count
// alike: megatron-run's CPU trainer (runtime/train/Trainer.cpp, setUpDistributedOptimizer) and the device optimizer
// (DeviceOptimizer). Plan-only and MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_REPLICACHUNK_H
#define MEGATRON_RUNTIME_DEVICE_REPLICACHUNK_H

#include "megatron/Plan/Plan.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace megatron::device {

/// Runs of elements: (first, count).
using Runs = std::vector<std::pair<std::int64_t, std::int64_t>>;

struct ReplicaChunk {
  std::int64_t chunk = 0;    // elements per replica (the optimizer_shard's size)
  std::int64_t lo = 0, hi = 0; // this replica's flat elements [lo, hi), hi clamped to the arena's end
  /// A parameter's part of the chunk: flat elements [flat, flat + length) of both arenas (its values and its
  /// gradient's), whose moments are the optimizer_shard's elements from flat - lo; `decay`: its weight decay.
  struct Piece {
    std::int64_t flat = 0, length = 0;
    bool decay = true;
  };
  std::vector<Piece> pieces;
  /// The flat runs of the chunk whose squares this rank adds into the global norm, per parameter in order.
  Runs normRuns;
};

/// Replica `dpRank` of `dpSize`'s chunk of `plan`, or nullopt and the reason in `error`: a plan without the
/// distributed optimizer, one whose optimizer_shard is not sized for `dpSize` replicas, or arenas not laid out
/// alike (every parameter and gradient f32, each gradient at its parameter's offset). `counted`: per parameter,
/// the runs of its gradient this rank counts in the norm when it holds them (runtime/train/Shards.h's ownedRuns;
/// none for a tied parameter's later copy); null counts every element.
std::optional<ReplicaChunk> replicaChunk(const plan::Plan &plan, int dpRank, int dpSize,
                                         const std::vector<Runs> *counted, std::string &error);

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_REPLICACHUNK_H
