//===- Shards.cpp - Where a rank's parameter shard sits in the whole tensor ===//

#include "Shards.h"

#include <algorithm>

namespace megatron::train {

namespace {

/// Spans of the sharded dimension: [start, start + length) of the whole tensor at `localStart` in the rank's.
struct DimSpan {
  int64_t start, length, localStart;
};

std::vector<DimSpan> localSpans(const plan::Param &param, int rank) {
  std::vector<DimSpan> spans;
  int64_t at = 0;
  for (const auto &[start, length] : param.shard.spans[static_cast<size_t>(rank)]) {
    spans.push_back({start, length, at});
    at += length;
  }
  return spans;
}

/// The spans expanded over the dimensions before (outer) and after (inner) the sharded one.
std::vector<ShardRun> expand(const plan::Param &param, int rank, const std::vector<DimSpan> &spans) {
  size_t dim = static_cast<size_t>(param.shard.dim);
  int64_t outer = 1, inner = 1, localExtent = 0;
  for (size_t i = 0; i < dim; ++i)
    outer *= param.shape[i];
  for (size_t i = dim + 1; i < param.shape.size(); ++i)
    inner *= param.shape[i];
  for (const auto &span : param.shard.spans[static_cast<size_t>(rank)])
    localExtent += span.second;
  std::vector<ShardRun> runs;
  for (int64_t o = 0; o < outer; ++o)
    for (const DimSpan &s : spans)
      runs.push_back({(o * param.shape[dim] + s.start) * inner, (o * localExtent + s.localStart) * inner,
                      s.length * inner});
  return runs;
}

} // namespace

int64_t wholeElements(const plan::Param &param, int64_t localElements) {
  if (!param.shard.isSharded())
    return localElements;
  int64_t n = 1;
  for (int64_t d : param.shape)
    n *= d;
  return n;
}

std::vector<ShardRun> shardRuns(const plan::Param &param, int rank, int64_t localElements) {
  if (!param.shard.isSharded())
    return {ShardRun{0, 0, localElements}};
  return expand(param, rank, localSpans(param, rank));
}

std::vector<ShardRun> ownedRuns(const plan::Param &param, int rank, int64_t localElements) {
  if (!param.shard.isSharded())
    return rank == 0 ? std::vector<ShardRun>{ShardRun{0, 0, localElements}} : std::vector<ShardRun>{};
  // The owner of each index of the sharded dimension: the lowest rank whose spans hold it.
  int64_t extent = param.shape[static_cast<size_t>(param.shard.dim)];
  std::vector<int> owner(static_cast<size_t>(extent), -1);
  for (int r = static_cast<int>(param.shard.spans.size()) - 1; r >= 0; --r)
    for (const auto &[start, length] : param.shard.spans[static_cast<size_t>(r)])
      std::fill(owner.begin() + start, owner.begin() + start + length, r);
  std::vector<DimSpan> owned;
  for (const DimSpan &s : localSpans(param, rank))
    for (int64_t i = 0; i < s.length;) {
      if (owner[static_cast<size_t>(s.start + i)] != rank) {
        ++i;
        continue;
      }
      int64_t j = i;
      while (j < s.length && owner[static_cast<size_t>(s.start + j)] == rank)
        ++j;
      owned.push_back({s.start + i, j - i, s.localStart + i});
      i = j;
    }
  return expand(param, rank, owned);
}

} // namespace megatron::train
