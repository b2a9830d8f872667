//===- Shards.h - Where a rank's parameter shard sits in the whole tensor -*- C++ -*-===//
//
// A tensor-parallel plan gives each parameter its whole shape and, per rank, the spans of one dimension that
// the rank's buffer holds (plan::ParamShard; docs/plan.md). The trainer works on whole tensors where the run
// must not depend on the layout (initialisation, checkpoints, the gradient norm) and on the rank's buffer
// everywhere else; these runs translate between the two. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_SHARDS_H
#define MEGATRON_RUNTIME_TRAIN_SHARDS_H

#include "megatron/Plan/Plan.h"

#include <cstdint>
#include <vector>

namespace megatron::train {

/// `length` consecutive elements of a rank's buffer, starting at element `local`, are elements [whole, whole +
/// length) of the whole (row-major) tensor.
struct ShardRun {
  int64_t whole = 0;
  int64_t local = 0;
  int64_t length = 0;
};

/// Elements of the whole tensor of `param` (its buffer's count, `localElements`, when it is not sharded).
int64_t wholeElements(const plan::Param &param, int64_t localElements);

/// Rank `rank`'s buffer of `param` as runs of the whole tensor, in local order, covering the buffer exactly once
/// (one run of `localElements` for a replicated parameter).
std::vector<ShardRun> shardRuns(const plan::Param &param, int rank, int64_t localElements);

/// The part of shardRuns that rank `rank` owns, so that the ranks together cover every element of the whole
/// tensor exactly once: a replicated parameter belongs to rank 0, an index of the sharded dimension that several
/// ranks hold (a replicated key/value head) to the lowest of them.
std::vector<ShardRun> ownedRuns(const plan::Param &param, int rank, int64_t localElements);

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_SHARDS_H
