//===- CollectiveSteps.cpp - Plan collectives to communicator calls --------===//
//
// The collective steps (all_reduce, all_gather, reduce_scatter, shard_slice, all_reduce_grads) bound to the
// engine's tensor- and data-parallel communicators, and the workspace all_reduce_grads packs into.
//
//===----------------------------------------------------------------------===//

#include "CollectiveLayout.h"
#include "StepBinder.h"
#include "StepView.h"

#include <algorithm>
#include <optional>

namespace megatron::runtime {

namespace {

/// The gradients of an all_reduce_grads step as one collective: in place over their span when they are
/// contiguous, else packed into the workspace, reduced and unpacked.
template <typename T> struct GradientRange {
  struct Slice {
    T *data;
    Index count;
  };
  std::vector<Slice> slices;
  T *workspace = nullptr;
  T *span = nullptr; // in place when set
  Index total = 0;   // elements reduced

  std::string allReduce(comm::Communicator &group, plan::DType dtype) const {
    if (span)
      return group.allReduce(span, total, dtype, comm::ReduceOp::Sum);
    T *packed = workspace;
    for (const Slice &s : slices) {
      std::copy(s.data, s.data + s.count, packed);
      packed += s.count;
    }
    if (std::string error = group.allReduce(workspace, total, dtype, comm::ReduceOp::Sum); !error.empty())
      return error;
    packed = workspace;
    for (const Slice &s : slices) {
      std::copy(packed, packed + s.count, s.data);
      packed += s.count;
    }
    return {};
  }
};

template <typename T>
std::optional<GradientRange<T>> gradientRange(Engine &engine, const plan::Step &step, T *workspace,
                                              std::string &error) {
  GradientRange<T> range;
  if (std::optional<GradientSpan> span = contiguousGradients(engine.plan(), step)) {
    range.span = engine.as<T>(span->firstBuffer);
    range.total = span->planBytes / static_cast<int64_t>(sizeof(T));
    return range;
  }
  range.workspace = workspace;
  for (int id : step.outputs) {
    GradientSlice slice = gradientSlice(engine.buffer(id), step);
    if (!slice.problem.empty()) {
      error = slice.problem;
      return std::nullopt;
    }
    range.slices.push_back({engine.as<T>(id) + slice.offset, slice.count});
    range.total += slice.count;
  }
  return range;
}

} // namespace

std::int64_t StepBinder::collectiveWorkspaceBytes(const plan::Step &step) const {
  int64_t elementBytes = 8; // enough for float and double
  // The packed gradients of the one coalesced all-reduce; none when they lie back to back (reduced in place)
  // and the step is data-parallel (the tensor-parallel form always packs).
  std::string problem;
  const std::string group = collectiveGroup(step, problem);
  if (!group.empty() && group != "tp" && contiguousGradients(engine.plan(), step))
    return 0;
  return packedGradientElements(engine.plan(), step) * elementBytes;
}

template <typename T>
std::optional<Engine::BoundStep> StepBinder::bindCollective(const plan::Step &step, const std::string &where,
                                                            T *workspace, std::string &error) {
  const std::string &op = step.op;
  const ParallelRank tp = engine.parallelRank();
  comm::Communicator *group = engine.tpGroup;
  const plan::DType dtype = dtypeOf<T>();
  auto fail = [&](const std::string &message) -> std::optional<Engine::BoundStep> {
    error = where + ": " + message;
    return std::nullopt;
  };
  // "dp" (the replicas) and "embedding" (the pipeline stages sharing a tied embedding) only sum gradients.
  std::string problem;
  const std::string groupName = collectiveGroup(step, problem);
  if (!problem.empty())
    return fail(problem);
  comm::Communicator *replicaGroup =
      groupName == "dp" ? engine.dpGroup : groupName == "embedding" ? engine.embGroup : nullptr;
  // What a failed collective returns: the step, then the communicator's message (which names the group, and the
  // rank at fault).
  auto report = [where](const std::string &message) { return message.empty() ? message : where + ": " + message; };

  if (groupName != "tp") {
    // Data parallelism, tied embeddings: gradients summed in place after the last micro-batch.
    if (op != "all_reduce_grads")
      return fail("over the group \"" + groupName + "\" the engine runs all_reduce_grads only, not " + op);
    if (!step.inputs.empty())
      return fail("all_reduce_grads takes no inputs; its outputs are the gradients it sums in place");
    if (step.attrs.count("group_size"))
      return fail("group_size applies to the tensor-parallel group only");
    std::optional<GradientRange<T>> range = gradientRange<T>(engine, step, workspace, error);
    if (!range) {
      error = where + ": " + error;
      return std::nullopt;
    }
    if (!replicaGroup || replicaGroup->size() == 1 || range->total == 0)
      return Engine::BoundStep{[](const RunContext &) { return std::string(); }};
    return Engine::BoundStep{[range = *range, replicaGroup, report, dtype](const RunContext &) {
      return report(range.allReduce(*replicaGroup, dtype));
    }};
  }

  if (!group && tp.tpSize > 1 && op != "shard_slice") // shard_slice only reads the rank
    return fail("a collective over " + std::to_string(tp.tpSize) +
                " tensor-parallel ranks needs the group's communicator (Engine::create with one)");
  const int size = tp.tpSize;

  if (op == "all_reduce_grads") {
    if (!step.inputs.empty())
      return fail("all_reduce_grads takes no inputs; its outputs are the gradients it sums in place");
    int64_t groupSize = size;
    if (step.attrs.count("group_size")) {
      groupSize = StepView<T>{engine, step, where, {}}.template attr<int64_t>("group_size", 0);
      if (groupSize < 1 || size % groupSize != 0)
        return fail("group_size " + std::to_string(groupSize) + " does not divide the group's " +
                    std::to_string(size) + " ranks");
    }
    struct Slice {
      T *data;
      Index count;
    };
    std::vector<Slice> slices;
    Index total = 0;
    for (int id : step.outputs) {
      GradientSlice slice = gradientSlice(engine.buffer(id), step);
      if (!slice.problem.empty())
        return fail(slice.problem);
      slices.push_back({engine.as<T>(id) + slice.offset, slice.count});
      total += slice.count;
    }
    comm::Communicator *sub = engine.subGroup(groupSize);
    if (groupSize > 1 && !sub)
      return fail("no communicator over blocks of " + std::to_string(groupSize) + " ranks");
    if (!sub || total == 0) // one rank per block: nothing to sum
      return Engine::BoundStep{[](const RunContext &) { return std::string(); }};
    // One coalesced collective: pack the gradients into the workspace, all-reduce, unpack.
    return Engine::BoundStep{[=](const RunContext &) {
      T *packed = workspace;
      for (const Slice &s : slices) {
        std::copy(s.data, s.data + s.count, packed);
        packed += s.count;
      }
      if (std::string e = sub->allReduce(workspace, total, dtype, comm::ReduceOp::Sum); !e.empty())
        return report(e);
      packed = workspace;
      for (const Slice &s : slices) {
        std::copy(packed, packed + s.count, s.data);
        packed += s.count;
      }
      return std::string();
    }};
  }

  std::optional<ShardedCollective> layout = shardedCollective(engine.plan(), step, size, problem);
  if (!layout)
    return fail(problem);
  T *x = engine.as<T>(step.inputs[0]), *y = engine.as<T>(step.outputs[0]);
  if (op == "all_reduce") {
    Index n = layout->chunk;
    return Engine::BoundStep{[=](const RunContext &) {
      if (x != y)
        std::copy(x, x + n, y);
      return group && size > 1 ? report(group->allReduce(y, n, dtype, comm::ReduceOp::Sum)) : std::string();
    }};
  }

  const bool gather = op == "all_gather";
  Index outer = layout->outer, chunk = layout->chunk, n = layout->localElements();
  if (op == "shard_slice") {
    // This rank's block along dim: no communication.
    Index offset = chunk * tp.tpRank, fullChunk = chunk * size;
    return Engine::BoundStep{[=](const RunContext &) {
      for (Index o = 0; o < outer; ++o)
        std::copy_n(x + o * fullChunk + offset, chunk, y + o * chunk);
      return std::string();
    }};
  }
  if (!group || size == 1)
    return Engine::BoundStep{[=](const RunContext &) {
      std::copy(x, x + n, y);
      return std::string();
    }};
  if (gather)
    return Engine::BoundStep{[=](const RunContext &) { return report(group->allGatherDim(x, y, outer, chunk, dtype)); }};
  if (op == "reduce_scatter")
    return Engine::BoundStep{[=](const RunContext &) {
      return report(group->reduceScatterDim(x, y, outer, chunk, dtype, comm::ReduceOp::Sum));
    }};
  return fail("unknown collective");
}

template std::optional<Engine::BoundStep> StepBinder::bindCollective<float>(const plan::Step &, const std::string &,
                                                                            float *, std::string &);
template std::optional<Engine::BoundStep> StepBinder::bindCollective<double>(const plan::Step &, const std::string &,
                                                                             double *, std::string &);

} // namespace megatron::runtime
