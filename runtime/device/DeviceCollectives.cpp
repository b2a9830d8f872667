//===- DeviceCollectives.cpp - A plan's collectives on device buffers -------===//

#include "runtime/device/DeviceCollectives.h"

#include "runtime/engine/CollectiveLayout.h"

#include <algorithm>

namespace megatron::device {

namespace {

using runtime::RunContext;

/// The gradients of an all_reduce_grads step as one collective: in place over their span when they lie back to
/// back, else packed into the workspace (copies on the device), reduced and unpacked.
struct DeviceGradients {
  struct Slice {
    std::byte *data;
    std::size_t bytes;
  };
  std::vector<Slice> slices;
  std::byte *workspace = nullptr;
  void *span = nullptr; // in place when set
  std::int64_t total = 0; // elements reduced
  plan::DType dtype = plan::DType::F32;

  std::string allReduce(comm::Communicator &group, DeviceBackend &backend) const {
    if (span)
      return group.allReduce(span, total, dtype, comm::ReduceOp::Sum);
    std::byte *packed = workspace;
    for (const Slice &s : slices) {
      if (std::string error = backend.copyOnDevice(packed, s.data, s.bytes); !error.empty())
        return error;
      packed += s.bytes;
    }
    if (std::string error = group.allReduce(workspace, total, dtype, comm::ReduceOp::Sum); !error.empty())
      return error;
    packed = workspace;
    for (const Slice &s : slices) {
      if (std::string error = backend.copyOnDevice(s.data, packed, s.bytes); !error.empty())
        return error;
      packed += s.bytes;
    }
    return {};
  }
};

std::optional<DeviceGradients> deviceGradients(const CollectiveBinding &b, const plan::Step &step, bool inPlace,
                                               std::string &problem) {
  DeviceGradients gradients;
  if (step.outputs.empty())
    return gradients;
  gradients.dtype = b.plan.buffers[size_t(step.outputs[0])].dtype;
  for (int id : step.outputs)
    if (b.plan.buffers[size_t(id)].dtype != gradients.dtype) {
      problem = "its gradients are of several types (" + std::string(plan::toString(gradients.dtype)) + ", " +
                plan::toString(b.plan.buffers[size_t(id)].dtype) + "), which one collective cannot sum";
      return std::nullopt;
    }
  if (inPlace)
    if (std::optional<runtime::GradientSpan> span = runtime::contiguousGradients(b.plan, step)) {
      gradients.span = b.address(span->firstBuffer);
      gradients.total = span->planBytes / std::int64_t(deviceBytes(span->dtype));
      return gradients;
    }
  gradients.workspace = static_cast<std::byte *>(b.workspace);
  const std::size_t elementBytes = deviceBytes(gradients.dtype);
  for (int id : step.outputs) {
    runtime::GradientSlice slice = runtime::gradientSlice(b.plan.buffers[size_t(id)], step);
    if (!slice.problem.empty()) {
      problem = slice.problem;
      return std::nullopt;
    }
    gradients.slices.push_back({static_cast<std::byte *>(b.address(id)) + slice.offset * elementBytes,
                                std::size_t(slice.count) * elementBytes});
    gradients.total += slice.count;
  }
  return gradients;
}

HostStep nothing() {
  return [](const RunContext &) { return std::string(); };
}

} // namespace

std::optional<BoundMessage> bindPipelineMessage(const CollectiveBinding &b, const plan::Step &step,
                                                std::string &problem) {
  std::optional<runtime::PipelineMessage> message = runtime::pipelineMessage(b.plan, step, b.chunk, problem);
  if (!message)
    return std::nullopt;
  if (!b.groups.pipeline) {
    problem = "pipeline messages need the pipeline group's communicator (DeviceEngine::create with one)";
    return std::nullopt;
  }
  const plan::Buffer &buffer = b.plan.buffers[size_t(message->buffer)];
  BoundMessage bound;
  bound.message = *message;
  bound.group = b.groups.pipeline;
  bound.data = b.address(message->buffer);
  bound.count = buffer.numElements();
  bound.dtype = buffer.dtype; // the device stores every type as planned
  bound.bytes = std::size_t(bound.count) * deviceBytes(bound.dtype);
  return bound;
}

comm::Communicator *RankGroups::tensorBlock(std::int64_t groupSize) const {
  if (!tensor || groupSize <= 1)
    return nullptr;
  if (groupSize >= tensor->size())
    return tensor;
  auto it = tensorBlocks.find(groupSize);
  return it == tensorBlocks.end() ? nullptr : it->second.get();
}

namespace {

/// A vocabulary-parallel cross-entropy's rows and the type of its statistics (the logits' arithmetic type).
struct CrossEntropyRows {
  std::int64_t rows = 0;
  plan::DType stats = plan::DType::F32;
};

std::optional<CrossEntropyRows> vocabParallelRows(const plan::Plan &plan, const plan::Step &step) {
  auto it = step.attrs.find("vocab_parallel");
  if (step.op != "cross_entropy" || it == step.attrs.end() || !std::get_if<bool>(&it->second) ||
      !std::get<bool>(it->second) || step.inputs.empty())
    return std::nullopt;
  const plan::Buffer &logits = plan.buffers[size_t(step.inputs[0])];
  const std::int64_t vocab = logits.shape.empty() ? 0 : logits.shape.back();
  return CrossEntropyRows{vocab > 0 ? logits.numElements() / vocab : 0,
                          logits.dtype == plan::DType::F64 ? plan::DType::F64 : plan::DType::F32};
}

} // namespace

std::int64_t collectiveWorkspaceBytes(const plan::Plan &plan, const plan::Step &step) {
  if (std::optional<CrossEntropyRows> ce = vocabParallelRows(plan, step)) // [rows] maxima, [rows][2] sums
    return 3 * ce->rows * std::int64_t(deviceBytes(ce->stats));
  if (step.op != "all_reduce_grads")
    return 0;
  std::string problem;
  const std::string group = runtime::collectiveGroup(step, problem);
  // The data-parallel and embedding sums reduce contiguous gradients in place; the tensor-parallel one packs.
  if (!group.empty() && group != "tp" && runtime::contiguousGradients(plan, step))
    return 0;
  std::size_t elementBytes = 0;
  for (int id : step.outputs)
    elementBytes = std::max(elementBytes, deviceBytes(plan.buffers[size_t(id)].dtype));
  return runtime::packedGradientElements(plan, step) * std::int64_t(elementBytes);
}

std::optional<HostStep> bindCollectiveStep(const CollectiveBinding &b, const plan::Step &step,
                                           std::string &problem) {
  const std::string &op = step.op;
  if (op == "send" || op == "recv") {
    std::optional<BoundMessage> message = bindPipelineMessage(b, step, problem);
    if (!message)
      return std::nullopt;
    return HostStep([message = *message](const RunContext &context) {
      return message.issue(message.data, message.tag(context));
    });
  }
  DeviceBackend &backend = b.backend;
  const std::string groupName = runtime::collectiveGroup(step, problem);
  if (!problem.empty())
    return std::nullopt;

  if (groupName != "tp" || op == "all_reduce_grads") {
    if (op != "all_reduce_grads") {
      problem = "over the group \"" + groupName + "\" the engine runs all_reduce_grads only, not " + op;
      return std::nullopt;
    }
    if (!step.inputs.empty()) {
      problem = "all_reduce_grads takes no inputs; its outputs are the gradients it sums in place";
      return std::nullopt;
    }
    comm::Communicator *group = nullptr;
    if (groupName == "tp") {
      std::int64_t groupSize = b.groups.tensorSize();
      if (auto it = step.attrs.find("group_size"); it != step.attrs.end()) {
        const std::int64_t *value = std::get_if<std::int64_t>(&it->second);
        groupSize = value ? *value : 0;
        if (groupSize < 1 || b.groups.tensorSize() % groupSize != 0) {
          problem = "group_size " + std::to_string(groupSize) + " does not divide the group's " +
                    std::to_string(b.groups.tensorSize()) + " ranks";
          return std::nullopt;
        }
      }
      group = b.groups.tensorBlock(groupSize);
      if (groupSize > 1 && !group) {
        problem = "no communicator over blocks of " + std::to_string(groupSize) + " ranks";
        return std::nullopt;
      }
    } else {
      if (step.attrs.count("group_size")) {
        problem = "group_size applies to the tensor-parallel group only";
        return std::nullopt;
      }
      group = groupName == "dp" ? b.groups.data : b.groups.embedding;
    }
    std::optional<DeviceGradients> gradients = deviceGradients(b, step, /*inPlace=*/groupName != "tp", problem);
    if (!gradients)
      return std::nullopt;
    if (!group || group->size() == 1 || gradients->total == 0) // one rank: nothing to sum
      return nothing();
    return HostStep([gradients = *gradients, group, &backend](const RunContext &) {
      return gradients.allReduce(*group, backend);
    });
  }

  comm::Communicator *group = b.groups.tensor;
  const int size = b.groups.tensorSize();
  std::optional<runtime::ShardedCollective> layout = runtime::shardedCollective(b.plan, step, size, problem);
  if (!layout)
    return std::nullopt;
  const plan::Buffer &xb = b.plan.buffers[size_t(step.inputs[0])], &yb = b.plan.buffers[size_t(step.outputs[0])];
  if (xb.dtype != yb.dtype) {
    problem = std::string("its input is ") + plan::toString(xb.dtype) + " and its output " + plan::toString(yb.dtype);
    return std::nullopt;
  }
  const plan::DType dtype = yb.dtype;
  void *x = b.address(step.inputs[0]), *y = b.address(step.outputs[0]);
  const std::int64_t outer = layout->outer, chunk = layout->chunk;
  const std::size_t localBytes = std::size_t(layout->localElements()) * deviceBytes(dtype);
  auto copy = [&backend, x, y, localBytes]() {
    return x == y ? std::string() : backend.copyOnDevice(y, x, localBytes);
  };
  if (op == "all_reduce")
    return HostStep([=](const RunContext &) {
      if (std::string error = copy(); !error.empty())
        return error;
      return group && size > 1 ? group->allReduce(y, chunk, dtype, comm::ReduceOp::Sum) : std::string();
    });
  if (op != "all_gather" && op != "reduce_scatter") {
    problem = "no collective implements " + op + " on the device";
    return std::nullopt;
  }
  if (!group || size == 1)
    return HostStep([=](const RunContext &) { return copy(); });
  if (op == "all_gather")
    return HostStep([=](const RunContext &) { return group->allGatherDim(x, y, outer, chunk, dtype); });
  return HostStep(
      [=](const RunContext &) { return group->reduceScatterDim(x, y, outer, chunk, dtype, comm::ReduceOp::Sum); });
}

std::optional<std::vector<HostStep>> bindJoiningCollectives(const CollectiveBinding &b, const plan::Step &step,
                                                            std::size_t kernels, std::string &problem) {
  std::optional<CrossEntropyRows> ce = vocabParallelRows(b.plan, step);
  if (!ce || kernels != 3) {
    problem = "the runtime joins no collectives with the " + std::to_string(kernels) + " kernels of " + step.op;
    return std::nullopt;
  }
  comm::Communicator *group = b.groups.tensor;
  const std::int64_t rows = ce->rows;
  const plan::DType stats = ce->stats;
  void *maxima = b.workspace;
  void *sums = static_cast<std::byte *>(b.workspace) + rows * std::int64_t(deviceBytes(stats));
  auto allReduce = [group, stats](void *data, std::int64_t count, comm::ReduceOp op) -> HostStep {
    return [=](const RunContext &) { return group ? group->allReduce(data, count, stats, op) : std::string(); };
  };
  return std::vector<HostStep>{allReduce(maxima, rows, comm::ReduceOp::Max),
                               allReduce(sums, 2 * rows, comm::ReduceOp::Sum)};
}

} // namespace megatron::device
