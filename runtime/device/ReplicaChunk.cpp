//===- ReplicaChunk.cpp - A replica's chunk under the distributed optimizer -===//

#include "runtime/device/ReplicaChunk.h"

#include <algorithm>

namespace megatron::device {

namespace {

/// Why the arenas are not one flat f32 buffer of parameters and, alike, of gradients; "" when they are.
std::string flatLayoutProblem(const plan::Plan &plan) {
  const std::string refusal = "the distributed optimizer needs every parameter in f32 and the params and grads "
                              "arenas laid out alike (each gradient at its parameter's offset); ";
  if (plan.arenaBytes[int(plan::Arena::Params)] != plan.arenaBytes[int(plan::Arena::Grads)])
    return refusal + "the arenas differ in size";
  size_t inParams = 0, inGrads = 0;
  for (const plan::Buffer &b : plan.buffers) {
    inParams += b.arena == plan::Arena::Params;
    inGrads += b.arena == plan::Arena::Grads;
  }
  if (inParams != plan.params.size() || inGrads != plan.params.size())
    return refusal + "the arenas hold other buffers";
  for (const plan::Param &p : plan.params) {
    const plan::Buffer &value = plan.buffers[size_t(p.buffer)], &grad = plan.buffers[size_t(p.grad)];
    if (value.dtype != plan::DType::F32 || grad.dtype != plan::DType::F32 || value.offset != grad.offset ||
        value.bytes != grad.bytes || value.arena != plan::Arena::Params || grad.arena != plan::Arena::Grads)
      return refusal + "'" + p.name + "' differs";
  }
  return {};
}

} // namespace

std::optional<ReplicaChunk> replicaChunk(const plan::Plan &plan, int dpRank, int dpSize,
                                         const std::vector<Runs> *counted, std::string &error) {
  if (!plan.parallel.distributedOptimizer || !plan.optimizerShard) {
    error = "the plan is not compiled with the distributed optimizer";
    return std::nullopt;
  }
  if (dpSize < 1 || dpRank < 0 || dpRank >= dpSize) {
    error = "replica " + std::to_string(dpRank) + " of " + std::to_string(dpSize);
    return std::nullopt;
  }
  if (error = flatLayoutProblem(plan); !error.empty())
    return std::nullopt;
  const int64_t gradsBytes = plan.arenaBytes[int(plan::Arena::Grads)];
  if (plan.optimizerShard->elements != plan::distributedOptimizerChunk(gradsBytes, dpSize)) {
    error = "the distributed optimizer's moments (optimizer_shard, " + std::to_string(plan.optimizerShard->elements) +
            " elements) do not match " + std::to_string(dpSize) + " data-parallel chunks of the gradients arena";
    return std::nullopt;
  }
  if (counted && counted->size() != plan.params.size()) {
    error = "the norm's runs name " + std::to_string(counted->size()) + " parameters; the plan has " +
            std::to_string(plan.params.size());
    return std::nullopt;
  }
  ReplicaChunk result;
  const int64_t flatCount = gradsBytes / int64_t(sizeof(float));
  result.chunk = plan.optimizerShard->elements;
  result.lo = std::min(flatCount, dpRank * result.chunk);
  result.hi = std::min(flatCount, (dpRank + 1) * result.chunk);
  for (size_t i = 0; i < plan.params.size(); ++i) {
    const plan::Param &p = plan.params[i];
    const int64_t start = plan.buffers[size_t(p.grad)].offset / int64_t(sizeof(float));
    const int64_t n = plan.buffers[size_t(p.grad)].numElements();
    const int64_t from = std::max(result.lo, start), to = std::min(result.hi, start + n);
    if (from < to)
      result.pieces.push_back({from, to - from, p.weightDecay});
    const Runs every = {{0, n}};
    for (const auto &[first, count] : counted ? (*counted)[i] : every) {
      if (first < 0 || count < 0 || first + count > n) {
        error = "the norm's run [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of " + p.name +
                " lies outside its gradient";
        return std::nullopt;
      }
      const int64_t a = std::max(result.lo, start + first), b = std::min(result.hi, start + first + count);
      if (a < b)
        result.normRuns.push_back({a, b - a});
    }
  }
  return result;
}

} // namespace megatron::device
