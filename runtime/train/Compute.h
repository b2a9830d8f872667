//===- Compute.h - Where a rank's programs run -------------------*- C++ -*-===//
//
// The training loop (Trainer.cpp) keeps every buffer of the plan in a host runtime::Engine: the data loader writes
// the inputs there, parameters are initialised and checkpoints read and written there, generation reads the logits
// there. What runs the programs is a Compute: the CPU engine itself (hostCompute, whose copies are no-ops), or a
// device engine that mirrors it (DeviceCompute.h), for which the loop copies a buffer up after writing it on the
// host and down before reading it there. So one loop, one checkpoint format and one sampler serve both. Private
// to runtime/train; MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_COMPUTE_H
#define MEGATRON_RUNTIME_TRAIN_COMPUTE_H

#include "runtime/engine/Engine.h"

#include <cstdint>
#include <memory>
#include <string>

namespace megatron::train {

class Compute {
public:
  virtual ~Compute() = default;

  /// Runs program `name`; "" or the error naming the step.
  virtual std::string run(const std::string &name, const runtime::RunContext &context) = 0;
  /// The scalar loss the last run of `name` left; "" or the error.
  virtual std::string loss(const std::string &name, double &value) = 0;
  /// Zeroes the gradients before an iteration's first micro-batch.
  virtual std::string zeroGradients() = 0;

  /// Buffer `id` of the host engine, just written there, becomes the programs' (a copy to the device).
  virtual std::string toDevice(int id) = 0;
  /// Elements [first, first + count) of buffer `id` (count < 0: to its end) come back into the host engine
  /// (16-bit values widened to the host's f32 storage).
  virtual std::string toHost(int id, int64_t first = 0, int64_t count = -1) = 0;
};

/// The CPU engine running its own programs: nothing to copy.
std::unique_ptr<Compute> hostCompute(runtime::Engine &engine);

/// The training state (every parameter and both AdamW moments) from the host engine to the compute, after the
/// parameters are initialised or loaded; and back, before a checkpoint is written. "" or the error.
std::string trainingStateToDevice(Compute &compute, const plan::Plan &plan);
std::string trainingStateToHost(Compute &compute, const plan::Plan &plan);

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_COMPUTE_H
