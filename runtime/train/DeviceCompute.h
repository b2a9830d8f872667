//===- DeviceCompute.h - A rank's programs on a device backend ---*- C++ -*-===//
//
// The Compute of `megatron-run --device cuda` (docs/cuda.md, "Training on the device"): the plan's generated kernels
// on a device::DeviceEngine over a DeviceBackend (a GPU, or the host simulator in the tests), and Megatron's
// optimizer step (gradient norm, clipping, fp16's unscale and skip, AdamW; the distributed optimizer's
// reduce-scatter and all-gather) on a device::DeviceOptimizer. The host
// engine stays the loop's view of the buffers: toDevice and toHost copy between the two, converting 16-bit
// values between the device's two-byte storage and the host's f32. A rank of a parallel run (DeviceRank) gives the
// engine its communicators on the device (the same-device world's groups, or NCCL's) and the optimizer its share of
// the global gradient norm. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_DEVICECOMPUTE_H
#define MEGATRON_RUNTIME_TRAIN_DEVICECOMPUTE_H

#include "Compute.h"

#include "runtime/device/DeviceOptimizer.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron::train {

/// A rank's part in a parallel run on the device: its groups, whose buffers are device pointers (null stands for
/// one rank, as in device::DeviceEngine::create), and its share of the global gradient norm (none: one rank, every
/// element counted; under the distributed optimizer, every replica's runs as the first replica's, NormShare).
struct DeviceRank {
  comm::Communicator *tensor = nullptr, *data = nullptr, *pipeline = nullptr, *embedding = nullptr;
  std::optional<device::NormShare> norm;
};

class DeviceCompute final : public Compute {
public:
  /// Generates the plan's kernels, allocates its arenas on `backend` and prepares the optimizer, with `rank`'s
  /// groups and norm share (collective over the tensor group: its ranks create theirs at the same time). Fails
  /// with a message on a plan the device engine cannot run. A plan compiled with the distributed optimizer steps
  /// the replica's chunk (DeviceOptimizer) over the data group. `host`, `backend` and the groups must outlive it.
  static std::unique_ptr<DeviceCompute> create(runtime::Engine &host, device::DeviceBackend &backend,
                                               DeviceRank rank, std::string &error);

  std::string run(const std::string &name, const runtime::RunContext &context) override;
  std::string loss(const std::string &name, double &value) override;
  std::string zeroGradients() override;
  std::string toDevice(int id) override;
  std::string toHost(int id, int64_t first = 0, int64_t count = -1) override;

  /// The optimizer step of an iteration on the device (DeviceOptimizer::step): the gradients divided by
  /// `lossScale` first; with a loss scaler (`skipped` given) an overflow sets it and leaves `norm` non-finite, where
  /// without one it is an error.
  std::string optimizerStep(const device::AdamWSettings &adam, double clipGrad, double lossScale, double &norm,
                            bool *skipped);

  /// Pipeline messages in units (device::DeviceEngine::exchange, flushMessages): before each unit of the schedule,
  /// and after the last.
  std::string exchange(const std::vector<device::DeviceEngine::ScheduledRun> &unit) { return engine->exchange(unit); }
  std::string flushMessages() { return engine->flushMessages(); }

  /// Seconds the device spent in the programs' collectives and pipeline messages since it was made, read from the
  /// markers recorded around them (DeviceEngine::communicationSeconds): call it where the device is idle.
  std::string communicationSeconds(double &seconds) { return engine->communicationSeconds(seconds); }

  /// For the banner: "the host CUDA simulator", "CUDA device 0 (...)".
  std::string describe() const { return backend.describe(); }
  /// The device memory of the plan's arenas.
  int64_t allocatedBytes() const;

private:
  DeviceCompute(runtime::Engine &host, device::DeviceBackend &backend) : host(host), backend(backend) {}

  runtime::Engine &host;
  device::DeviceBackend &backend;
  codegen::KernelSet kernels;
  std::unique_ptr<device::DeviceEngine> engine;
  std::unique_ptr<device::DeviceOptimizer> optimizer;
};

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_DEVICECOMPUTE_H
