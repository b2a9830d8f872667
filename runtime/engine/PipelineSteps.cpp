//===- PipelineSteps.cpp - Send and recv steps between pipeline chunks -----===//
//
// A pipeline chunk's boundary values travel as point-to-point messages over the pipeline group. Several kinds
// share a pair of stages (activations one way, gradients the other, and with virtual stages several chunks' of
// each), and the schedule interleaves micro-batches, so every message is tagged with what it is: the
// micro-batch, the boundary between chunks c and c + 1, the direction and the value's index (CollectiveLayout.h).
// A receiver gets exactly the message it asks for, whatever order the peers ran in.
//
//===----------------------------------------------------------------------===//

#include "CollectiveLayout.h"
#include "StepBinder.h"
#include "StepView.h"

namespace megatron::runtime {

template <typename T>
std::optional<Engine::BoundStep> StepBinder::bindPipelineMessage(const plan::Step &step, const std::string &where,
                                                                 std::string &error) {
  auto fail = [&](const std::string &message) -> std::optional<Engine::BoundStep> {
    error = where + ": " + message;
    return std::nullopt;
  };
  std::string problem;
  std::optional<PipelineMessage> message = pipelineMessage(engine.plan(), step, engine.bindingChunk, problem);
  if (!message)
    return fail(problem);
  comm::Communicator *group = engine.ppGroup;
  if (!group)
    return fail("pipeline messages need the pipeline group's communicator (Engine::create with one)");

  const plan::Buffer &buffer = engine.buffer(message->buffer);
  const std::int64_t count = buffer.numElements();
  const plan::DType dtype = Engine::storageType(buffer.dtype);
  void *data = engine.data(message->buffer);
  auto report = [where](const std::string &message) { return message.empty() ? message : where + ": " + message; };
  return Engine::BoundStep{[=, message = *message](const RunContext &context) {
    const int tag = message.tag(context.microBatch);
    return report(message.send ? group->send(data, count, dtype, message.peer, tag)
                               : group->recv(data, count, dtype, message.peer, tag));
  }};
}

template std::optional<Engine::BoundStep> StepBinder::bindPipelineMessage<float>(const plan::Step &,
                                                                                const std::string &, std::string &);
template std::optional<Engine::BoundStep> StepBinder::bindPipelineMessage<double>(const plan::Step &,
                                                                                 const std::string &, std::string &);

} // namespace megatron::runtime
