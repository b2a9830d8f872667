//===- CollectiveSteps.cpp - Plan collectives to communicator calls --------===//
//
// The collective steps (all_reduce, all_gather, reduce_scatter, shard_slice, all_reduce_grads) bound to the
// engine's tensor- and data-parallel communicators, and the workspace all_reduce_grads packs into.
//
//===----------------------------------------------------------------------===//

#include "StepBinder.h"
#include "StepView.h"

#include <algorithm>
#include <optional>

namespace megatron::runtime {

namespace {

/// The elements of a gradient buffer that an all_reduce_grads step sums: rows [row_offset, row_offset +
/// row_count) of dimension 0 when the step has those attributes, else the whole buffer.
struct GradientSlice {
  Index offset = 0, count = 0;
  std::string problem;
};

GradientSlice gradientSlice(const plan::Buffer &buffer, const plan::Step &step) {
  GradientSlice slice{0, buffer.numElements(), {}};
  auto offsetIt = step.attrs.find("row_offset"), countIt = step.attrs.find("row_count");
  if (offsetIt == step.attrs.end() && countIt == step.attrs.end())
    return slice;
  const int64_t *offset = offsetIt == step.attrs.end() ? nullptr : std::get_if<int64_t>(&offsetIt->second);
  const int64_t *count = countIt == step.attrs.end() ? nullptr : std::get_if<int64_t>(&countIt->second);
  int64_t rows = buffer.shape.empty() ? 1 : buffer.shape[0];
  if (!offset || !count || *offset < 0 || *count < 0 || *offset + *count > rows) {
    slice.problem = "row_offset and row_count must both be given and select rows of the gradient's " +
                    std::to_string(rows);
    slice.count = 0;
    return slice;
  }
  Index rowElements = rows > 0 ? buffer.numElements() / rows : 0;
  slice.offset = *offset * rowElements;
  slice.count = *count * rowElements;
  return slice;
}

/// Whether an all_reduce_grads step's gradients are whole buffers of one arena lying back to back (nothing but
/// alignment padding between them, which no kernel writes and the arena's zeroing keeps zero): then one
/// collective sums them in place, without packing. Sets the span's first byte and its length.
bool contiguousGradients(const Engine &engine, const plan::Step &step, int64_t &firstByte, int64_t &bytes) {
  if (step.outputs.empty() || step.attrs.count("row_offset") || step.attrs.count("row_count"))
    return false;
  std::vector<const plan::Buffer *> buffers;
  for (int id : step.outputs)
    buffers.push_back(&engine.buffer(id));
  std::sort(buffers.begin(), buffers.end(),
            [](const plan::Buffer *a, const plan::Buffer *b) { return a->offset < b->offset; });
  for (size_t i = 1; i < buffers.size(); ++i) {
    int64_t end = buffers[i - 1]->offset + buffers[i - 1]->bytes;
    if (buffers[i]->arena != buffers[0]->arena || buffers[i]->dtype != buffers[0]->dtype ||
        buffers[i]->offset < end || buffers[i]->offset - end >= plan::kAlignment ||
        (buffers[i]->offset - end) % plan::bytesOf(buffers[0]->dtype) != 0)
      return false;
  }
  firstByte = buffers.front()->offset;
  bytes = buffers.back()->offset + buffers.back()->bytes - firstByte;
  return true;
}

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
  int64_t firstByte = 0, bytes = 0;
  if (contiguousGradients(engine, step, firstByte, bytes)) {
    for (int id : step.outputs) // the first buffer of the span
      if (engine.buffer(id).offset == firstByte)
        range.span = engine.as<T>(id);
    range.total = bytes / static_cast<int64_t>(sizeof(T));
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

/// A buffer seen as [outer][extent of dimension `dim`][inner] (row-major).
struct DimSplit {
  Index outer = 1, extent = 1, inner = 1;
};

std::optional<DimSplit> splitAt(const std::vector<int64_t> &shape, int64_t dim) {
  if (dim < 0 || dim >= static_cast<int64_t>(shape.size()))
    return std::nullopt;
  DimSplit split;
  for (int64_t i = 0; i < dim; ++i)
    split.outer *= shape[static_cast<size_t>(i)];
  split.extent = shape[static_cast<size_t>(dim)];
  for (size_t i = static_cast<size_t>(dim) + 1; i < shape.size(); ++i)
    split.inner *= shape[i];
  return split;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

} // namespace

std::int64_t StepBinder::collectiveWorkspaceBytes(const plan::Step &step) const {
  int64_t elementBytes = 8; // enough for float and double
  // The packed gradients of the one coalesced all-reduce; none when they lie back to back (reduced in place)
  // and the step is data-parallel (the tensor-parallel form always packs).
  auto group = step.attrs.find("group");
  int64_t firstByte = 0, bytes = 0;
  if (group != step.attrs.end() && std::get_if<std::string>(&group->second) &&
      std::get<std::string>(group->second) != "tp" && contiguousGradients(engine, step, firstByte, bytes))
    return 0;
  int64_t total = 0;
  for (size_t i = 0; i < step.outputs.size(); ++i)
    total += gradientSlice(engine.buffer(step.outputs[i]), step).count;
  return total * elementBytes;
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
  comm::Communicator *replicaGroup = nullptr;
  std::string groupName = "tp";
  auto it = step.attrs.find("group");
  if (it != step.attrs.end()) {
    const std::string *name = std::get_if<std::string>(&it->second);
    if (!name || (*name != "tp" && *name != "dp" && *name != "embedding"))
      return fail("the engine runs collectives over the groups \"tp\", \"dp\" and \"embedding\" only");
    groupName = *name;
    replicaGroup = groupName == "dp" ? engine.dpGroup : groupName == "embedding" ? engine.embGroup : nullptr;
  }
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

  if (step.inputs.size() != 1 || step.outputs.size() != 1)
    return fail(op + " takes one input and one output");
  const plan::Buffer &xb = engine.buffer(step.inputs[0]), &yb = engine.buffer(step.outputs[0]);
  T *x = engine.as<T>(step.inputs[0]), *y = engine.as<T>(step.outputs[0]);
  if (op == "all_reduce") {
    if (xb.numElements() != yb.numElements())
      return fail("the input " + shapeText(xb.shape) + " and output " + shapeText(yb.shape) + " differ in size");
    Index n = yb.numElements();
    return Engine::BoundStep{[=](const RunContext &) {
      if (x != y)
        std::copy(x, x + n, y);
      return group && size > 1 ? report(group->allReduce(y, n, dtype, comm::ReduceOp::Sum)) : std::string();
    }};
  }

  // The rest split dimension `dim`: y's extent there is size times x's (all_gather), or x's size times y's.
  int64_t dim = StepView<T>{engine, step, where, {}}.template attr<int64_t>("dim", -1);
  bool gather = op == "all_gather";
  const plan::Buffer &local = gather ? xb : yb, &full = gather ? yb : xb;
  std::optional<DimSplit> l = splitAt(local.shape, dim), f = splitAt(full.shape, dim);
  if (!l || !f)
    return fail("dim " + std::to_string(dim) + " is not a dimension of " + shapeText(local.shape));
  if (l->outer != f->outer || l->inner != f->inner || f->extent != l->extent * size)
    return fail("the " + std::string(gather ? "output " : "input ") + shapeText(full.shape) + " is not " +
                std::to_string(size) + " times the " + (gather ? "input " : "output ") + shapeText(local.shape) +
                " along dimension " + std::to_string(dim));
  Index outer = l->outer, chunk = l->extent * l->inner, n = local.numElements();
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
