//===- CollectiveLayout.cpp - What a plan's collective and pipeline steps mean ----===//

#include "CollectiveLayout.h"

#include <algorithm>

namespace megatron::runtime {

namespace {

const std::int64_t *intAttr(const plan::Step &step, const char *name) {
  auto it = step.attrs.find(name);
  return it == step.attrs.end() ? nullptr : std::get_if<std::int64_t>(&it->second);
}

/// A buffer seen as [outer][extent of dimension `dim`][inner] (row-major).
struct DimSplit {
  std::int64_t outer = 1, extent = 1, inner = 1;
};

std::optional<DimSplit> splitAt(const std::vector<std::int64_t> &shape, std::int64_t dim) {
  if (dim < 0 || dim >= static_cast<std::int64_t>(shape.size()))
    return std::nullopt;
  DimSplit split;
  for (std::int64_t i = 0; i < dim; ++i)
    split.outer *= shape[static_cast<size_t>(i)];
  split.extent = shape[static_cast<size_t>(dim)];
  for (size_t i = static_cast<size_t>(dim) + 1; i < shape.size(); ++i)
    split.inner *= shape[i];
  return split;
}

/// The group sizes of the plan's all_reduce_grads steps that need a communicator of their own (1 < k < the
/// group's size), in order of first appearance: every rank splits them off in the same order.
std::string tensorBlockSizes(const plan::Plan &plan, int tpSize, std::vector<std::int64_t> &sizes) {
  for (const plan::Program &program : plan.programs)
    for (size_t i = 0; i < program.steps.size(); ++i) {
      const plan::Step &step = program.steps[i];
      if (step.op != "all_reduce_grads")
        continue;
      auto it = step.attrs.find("group_size");
      if (it == step.attrs.end())
        continue;
      auto group = step.attrs.find("group");
      if (group != step.attrs.end() && std::get_if<std::string>(&group->second) &&
          std::get<std::string>(group->second) != "tp")
        continue; // refused when the step is bound: group_size is for the tensor-parallel group

      const std::int64_t *k = std::get_if<std::int64_t>(&it->second);
      if (!k || *k < 1 || tpSize % *k != 0)
        return "step " + std::to_string(i) + " of " + program.name +
               " (all_reduce_grads): group_size must be a positive divisor of the tensor-parallel size " +
               std::to_string(tpSize);
      if (*k > 1 && *k < tpSize && std::find(sizes.begin(), sizes.end(), *k) == sizes.end())
        sizes.push_back(*k);
    }
  return {};
}

/// Values one pipeline boundary may carry; the tag space is micro-batches x boundaries x 2 directions x this.
constexpr std::int64_t kMaxBoundaryValues = 8;

} // namespace

std::string checkParallelGroups(const plan::Plan &plan, const comm::Communicator *tensorGroup,
                                const comm::Communicator *dataGroup, const comm::Communicator *pipelineGroup) {
  const int stages = pipelineGroup ? pipelineGroup->size() : 1;
  if (plan.pipeline.stages != stages || (pipelineGroup && pipelineGroup->rank() != plan.pipeline.stage)) {
    std::string error = "the plan is stage " + std::to_string(plan.pipeline.stage) + " of " +
            std::to_string(plan.pipeline.stages) + " pipeline stages, but " +
            (pipelineGroup ? "this rank is stage " + std::to_string(pipelineGroup->rank()) + " of " +
                                 std::to_string(stages)
                           : std::string("no pipeline communicator was given (one stage)"));
    return error;
  }
  const int size = tensorGroup ? tensorGroup->size() : 1;
  if (plan.parallel.tensor != size) {
    std::string error = "the plan is compiled for " + std::to_string(plan.parallel.tensor) + " tensor-parallel rank" +
            (plan.parallel.tensor == 1 ? "" : "s") + ", but " +
            (tensorGroup ? "the group \"" + tensorGroup->name() + "\" has " + std::to_string(size) + " rank" +
                               (size == 1 ? "" : "s")
                         : std::string("no tensor-parallel communicator was given (a single rank)"));
    return error;
  }
  const int replicas = dataGroup ? dataGroup->size() : 1;
  if (plan.parallel.data != replicas) {
    std::string error = "the plan is compiled for " + std::to_string(plan.parallel.data) + " data-parallel rank" +
            (plan.parallel.data == 1 ? "" : "s") + ", but " +
            (dataGroup ? "the group \"" + dataGroup->name() + "\" has " + std::to_string(replicas) + " rank" +
                             (replicas == 1 ? "" : "s")
                       : std::string("no data-parallel communicator was given (a single replica)"));
    return error;
  }
  return {};
}

std::string splitTensorBlocks(const plan::Plan &plan, comm::Communicator &tensorGroup,
                              std::map<std::int64_t, std::unique_ptr<comm::Communicator>> &blocks) {
  std::vector<std::int64_t> sizes;
  if (std::string error = tensorBlockSizes(plan, tensorGroup.size(), sizes); !error.empty())
    return error;
  const int rank = tensorGroup.rank();
  for (std::int64_t k : sizes) {
    std::string error;
    std::unique_ptr<comm::Communicator> block =
        tensorGroup.split(static_cast<int>(rank / k), rank, tensorGroup.name() + "/" + std::to_string(k), error);
    if (!block)
      return "cannot split the tensor-parallel group into blocks of " + std::to_string(k) + " ranks: " + error;
    blocks[k] = std::move(block);
  }
  return {};
}

std::string shapeText(const std::vector<std::int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string collectiveGroup(const plan::Step &step, std::string &problem) {
  auto it = step.attrs.find("group");
  if (it == step.attrs.end())
    return "tp";
  const std::string *name = std::get_if<std::string>(&it->second);
  if (!name || (*name != "tp" && *name != "dp" && *name != "embedding")) {
    problem = "the engine runs collectives over the groups \"tp\", \"dp\" and \"embedding\" only";
    return "";
  }
  return *name;
}

GradientSlice gradientSlice(const plan::Buffer &buffer, const plan::Step &step) {
  GradientSlice slice{0, buffer.numElements(), {}};
  if (!step.attrs.count("row_offset") && !step.attrs.count("row_count"))
    return slice;
  const std::int64_t *offset = intAttr(step, "row_offset"), *count = intAttr(step, "row_count");
  std::int64_t rows = buffer.shape.empty() ? 1 : buffer.shape[0];
  if (!offset || !count || *offset < 0 || *count < 0 || *offset + *count > rows) {
    slice.problem = "row_offset and row_count must both be given and select rows of the gradient's " +
                    std::to_string(rows);
    slice.count = 0;
    return slice;
  }
  std::int64_t rowElements = rows > 0 ? buffer.numElements() / rows : 0;
  slice.offset = *offset * rowElements;
  slice.count = *count * rowElements;
  return slice;
}

std::optional<GradientSpan> contiguousGradients(const plan::Plan &plan, const plan::Step &step) {
  if (step.outputs.empty() || step.attrs.count("row_offset") || step.attrs.count("row_count"))
    return std::nullopt;
  std::vector<int> ids(step.outputs.begin(), step.outputs.end());
  auto buffer = [&](int id) -> const plan::Buffer & { return plan.buffers[static_cast<size_t>(id)]; };
  std::sort(ids.begin(), ids.end(), [&](int a, int b) { return buffer(a).offset < buffer(b).offset; });
  const plan::Buffer &first = buffer(ids.front());
  for (size_t i = 1; i < ids.size(); ++i) {
    const plan::Buffer &previous = buffer(ids[i - 1]), &next = buffer(ids[i]);
    std::int64_t end = previous.offset + previous.bytes;
    if (next.arena != first.arena || next.dtype != first.dtype || next.offset < end ||
        next.offset - end >= plan::kAlignment || (next.offset - end) % plan::bytesOf(first.dtype) != 0)
      return std::nullopt;
  }
  const plan::Buffer &last = buffer(ids.back());
  return GradientSpan{ids.front(), last.offset + last.bytes - first.offset, first.dtype};
}

std::int64_t packedGradientElements(const plan::Plan &plan, const plan::Step &step) {
  std::int64_t total = 0;
  for (int id : step.outputs)
    total += gradientSlice(plan.buffers[static_cast<size_t>(id)], step).count;
  return total;
}

std::optional<ShardedCollective> shardedCollective(const plan::Plan &plan, const plan::Step &step, int groupSize,
                                                   std::string &problem) {
  const std::string &op = step.op;
  if (step.inputs.size() != 1 || step.outputs.size() != 1) {
    problem = op + " takes one input and one output";
    return std::nullopt;
  }
  const plan::Buffer &xb = plan.buffers[static_cast<size_t>(step.inputs[0])],
                     &yb = plan.buffers[static_cast<size_t>(step.outputs[0])];
  if (op == "all_reduce") {
    if (xb.numElements() != yb.numElements()) {
      problem = "the input " + shapeText(xb.shape) + " and output " + shapeText(yb.shape) + " differ in size";
      return std::nullopt;
    }
    return ShardedCollective{1, yb.numElements()};
  }
  // The rest split dimension `dim`: y's extent there is groupSize times x's (all_gather), or x's groupSize times
  // y's.
  const std::int64_t *dimAttr = intAttr(step, "dim");
  const std::int64_t dim = dimAttr ? *dimAttr : -1;
  const bool gather = op == "all_gather";
  const plan::Buffer &local = gather ? xb : yb, &full = gather ? yb : xb;
  std::optional<DimSplit> l = splitAt(local.shape, dim), f = splitAt(full.shape, dim);
  if (!l || !f) {
    problem = "dim " + std::to_string(dim) + " is not a dimension of " + shapeText(local.shape);
    return std::nullopt;
  }
  if (l->outer != f->outer || l->inner != f->inner || f->extent != l->extent * groupSize) {
    problem = "the " + std::string(gather ? "output " : "input ") + shapeText(full.shape) + " is not " +
              std::to_string(groupSize) + " times the " + (gather ? "input " : "output ") + shapeText(local.shape) +
              " along dimension " + std::to_string(dim);
    return std::nullopt;
  }
  return ShardedCollective{l->outer, l->extent * l->inner};
}

bool touchesStash(const plan::Plan &plan, const plan::Program &program) {
  for (const plan::Step &step : program.steps)
    for (const std::vector<int> *ids : {&step.inputs, &step.outputs})
      for (int id : *ids)
        if (plan.buffers[static_cast<size_t>(id)].arena == plan::Arena::Stash)
          return true;
  return false;
}

int PipelineMessage::tag(std::int64_t microBatch) const {
  return static_cast<int>(((microBatch * chunks + boundary) * 2 + (grad ? 1 : 0)) * kMaxBoundaryValues + index);
}

std::optional<PipelineMessage> pipelineMessage(const plan::Plan &plan, const plan::Step &step, int ownChunk,
                                               std::string &problem) {
  const std::int64_t *peerChunk = intAttr(step, "chunk"), *index = intAttr(step, "index");
  if (!peerChunk || !index) {
    problem = "a pipeline message needs the integer attributes chunk and index";
    return std::nullopt;
  }
  PipelineMessage message;
  message.send = step.op == "send";
  message.chunks = plan.pipeline.numChunks();
  if (ownChunk < 0) {
    problem = "a pipeline message belongs to a program of a pipeline chunk";
    return std::nullopt;
  }
  if (*peerChunk < 0 || *peerChunk >= message.chunks || (*peerChunk != ownChunk - 1 && *peerChunk != ownChunk + 1)) {
    problem = "chunk " + std::to_string(ownChunk) + " cannot exchange messages with chunk " +
              std::to_string(*peerChunk) + " (only with its neighbours among " + std::to_string(message.chunks) +
              ")";
    return std::nullopt;
  }
  if (*index < 0 || *index >= kMaxBoundaryValues) {
    problem = "index " + std::to_string(*index) + " is outside the " + std::to_string(kMaxBoundaryValues) +
              " values a boundary may carry";
    return std::nullopt;
  }
  if (message.send ? step.inputs.size() != 1 || !step.outputs.empty()
                   : step.outputs.size() != 1 || !step.inputs.empty()) {
    problem = message.send ? "send takes one input and no output" : "recv takes one output and no input";
    return std::nullopt;
  }
  auto flag = step.attrs.find("grad");
  message.grad = flag != step.attrs.end() && std::get_if<bool>(&flag->second) && std::get<bool>(flag->second);
  message.peer = static_cast<int>(*peerChunk % plan.pipeline.stages);
  message.boundary = std::min<std::int64_t>(ownChunk, *peerChunk);
  message.index = *index;
  message.buffer = message.send ? step.inputs[0] : step.outputs[0];
  return message;
}

} // namespace megatron::runtime
