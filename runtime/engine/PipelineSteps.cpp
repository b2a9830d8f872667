//===- PipelineSteps.cpp - Send and recv steps between pipeline chunks -----===//
//
// A pipeline chunk's boundary values travel as point-to-point messages over the pipeline group. Several kinds
// share a pair of stages (activations one way, gradients the other, and with virtual stages several chunks' of
// each), and the schedule interleaves micro-batches, so every message is tagged with what it is: the
// micro-batch, the boundary between chunks c and c + 1, the direction and the value's index. A receiver gets
// exactly the message it asks for, whatever order the peers ran in.
//
//===----------------------------------------------------------------------===//

#include "StepBinder.h"
#include "StepView.h"

namespace megatron::runtime {

namespace {

/// Values one boundary may carry; the tag space is micro-batches x boundaries x 2 directions x this.
constexpr std::int64_t kMaxBoundaryValues = 8;

std::int64_t intAttr(const plan::Step &step, const char *name, bool &ok) {
  auto it = step.attrs.find(name);
  const std::int64_t *value = it == step.attrs.end() ? nullptr : std::get_if<std::int64_t>(&it->second);
  ok = ok && value;
  return value ? *value : 0;
}

} // namespace

template <typename T>
std::optional<Engine::BoundStep> StepBinder::bindPipelineMessage(const plan::Step &step, const std::string &where,
                                                                 std::string &error) {
  auto fail = [&](const std::string &message) -> std::optional<Engine::BoundStep> {
    error = where + ": " + message;
    return std::nullopt;
  };
  const plan::PipelineInfo &pipeline = engine.plan().pipeline;
  const bool send = step.op == "send";
  bool ok = true;
  std::int64_t peerChunk = intAttr(step, "chunk", ok), index = intAttr(step, "index", ok);
  if (!ok)
    return fail("a pipeline message needs the integer attributes chunk and index");
  const bool grad = flagOf(step, "grad");
  const int ownChunk = engine.bindingChunk;
  const std::int64_t chunks = pipeline.numChunks();
  if (ownChunk < 0)
    return fail("a pipeline message belongs to a program of a pipeline chunk");
  if (peerChunk < 0 || peerChunk >= chunks || (peerChunk != ownChunk - 1 && peerChunk != ownChunk + 1))
    return fail("chunk " + std::to_string(ownChunk) + " cannot exchange messages with chunk " +
                std::to_string(peerChunk) + " (only with its neighbours among " + std::to_string(chunks) + ")");
  if (index < 0 || index >= kMaxBoundaryValues)
    return fail("index " + std::to_string(index) + " is outside the " + std::to_string(kMaxBoundaryValues) +
                " values a boundary may carry");
  if (send ? step.inputs.size() != 1 || !step.outputs.empty() : step.outputs.size() != 1 || !step.inputs.empty())
    return fail(send ? "send takes one input and no output" : "recv takes one output and no input");
  comm::Communicator *group = engine.ppGroup;
  if (!group)
    return fail("pipeline messages need the pipeline group's communicator (Engine::create with one)");

  const int peer = static_cast<int>(peerChunk % pipeline.stages);
  const std::int64_t boundary = std::min<std::int64_t>(ownChunk, peerChunk);
  const plan::Buffer &buffer = engine.buffer(send ? step.inputs[0] : step.outputs[0]);
  const std::int64_t count = buffer.numElements();
  const plan::DType dtype = Engine::storageType(buffer.dtype);
  void *data = engine.data(send ? step.inputs[0] : step.outputs[0]);
  auto report = [where](const std::string &message) { return message.empty() ? message : where + ": " + message; };
  return Engine::BoundStep{[=](const RunContext &context) {
    int tag = static_cast<int>(((context.microBatch * chunks + boundary) * 2 + (grad ? 1 : 0)) * kMaxBoundaryValues +
                               index);
    return report(send ? group->send(data, count, dtype, peer, tag) : group->recv(data, count, dtype, peer, tag));
  }};
}

template std::optional<Engine::BoundStep> StepBinder::bindPipelineMessage<float>(const plan::Step &,
                                                                                const std::string &, std::string &);
template std::optional<Engine::BoundStep> StepBinder::bindPipelineMessage<double>(const plan::Step &,
                                                                                 const std::string &, std::string &);

} // namespace megatron::runtime
