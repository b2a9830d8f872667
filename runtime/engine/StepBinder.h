//===- StepBinder.h - Plan steps to CPU kernel calls ------------*- C++ -*-===//
//
// Private to runtime/engine.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_ENGINE_STEPBINDER_H
#define MEGATRON_RUNTIME_ENGINE_STEPBINDER_H

#include "Engine.h"

namespace megatron::runtime {

class StepBinder {
public:
  explicit StepBinder(Engine &engine) : engine(engine) {}

  /// Kernel workspace, in bytes, that `step` needs with the current thread count.
  std::int64_t workspaceBytes(const plan::Step &step) const;

  /// A closure running `step` (step number `index` of `program`), or std::nullopt and an error when the CPU
  /// backend cannot execute it. Float buffers are T (float, or double for gradient checks).
  template <typename T>
  std::optional<Engine::BoundStep> bind(const plan::Step &step, size_t index, const std::string &program,
                                        std::string &error);

private:
  /// The workspace of an all_reduce_grads step (CollectiveSteps.cpp).
  std::int64_t collectiveWorkspaceBytes(const plan::Step &step) const;
  /// The collective steps (all_reduce, all_gather, reduce_scatter, shard_slice, all_reduce_grads) over the
  /// engine's tensor-parallel group.
  template <typename T>
  std::optional<Engine::BoundStep> bindCollective(const plan::Step &step, const std::string &where, T *workspace,
                                                  std::string &error);

  /// The send and recv steps of a pipeline chunk (PipelineSteps.cpp), over the engine's pipeline group.
  template <typename T>
  std::optional<Engine::BoundStep> bindPipelineMessage(const plan::Step &step, const std::string &where,
                                                       std::string &error);

  Engine &engine;
};

} // namespace megatron::runtime

#endif // MEGATRON_RUNTIME_ENGINE_STEPBINDER_H
