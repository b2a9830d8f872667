//===- DeviceOptimizer.h - Megatron's optimizer step on the device -*- C++ -*-===//
//
// What megatron-run's trainer does after an iteration's micro-batches (runtime/train, Run::trainIteration), with
// the code generator's optimizer kernels (codegen::optimizerKernels) on a DeviceEngine's buffers: the global
// gradient norm (each gradient's sum of squares in double, added in parameter order, as cpu::sumOfSquares over the
// CPU's gradients), clipping by clip / (norm + 1e-6) when that is below 1 (Megatron's --clip-grad), and AdamW on
// every parameter with torch.optim.AdamW's scalars computed on the host in double, as cpu::adamwStep computes them.
// Single rank; MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_DEVICEOPTIMIZER_H
#define MEGATRON_RUNTIME_DEVICE_DEVICEOPTIMIZER_H

#include "runtime/device/DeviceEngine.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace megatron::device {

/// One AdamW step's settings (cpu::AdamWConfig's fields): the learning rate of this step, the betas, eps, the
/// weight decay and the step number t (from 1).
struct AdamWSettings {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01;
  int64_t step = 1;
};

class DeviceOptimizer {
public:
  /// Prepares the plan's optimizer kernels on `backend` and the norm's device workspace. `engine` and `backend`
  /// must outlive it.
  static std::unique_ptr<DeviceOptimizer> create(DeviceEngine &engine, DeviceBackend &backend, std::string &error);
  ~DeviceOptimizer();
  DeviceOptimizer(const DeviceOptimizer &) = delete;
  DeviceOptimizer &operator=(const DeviceOptimizer &) = delete;

  /// The gradient norm into `norm` (one copy to the host), clipping when clipGrad > 0, then AdamW. "" or an error.
  /// With fp16's loss scale (runtime/train/LossScaler) the gradients are first divided by `lossScale`. Under a loss
  /// scaler (`skipped` given, whatever the scale, 1 included) a non-finite norm means an overflow somewhere (every
  /// element's square is in the sum), and the step is skipped, as Megatron skips it: `skipped` is set and nothing
  /// is updated. Without one, a non-finite norm is an error.
  std::string step(const AdamWSettings &adam, double clipGrad, double &norm, double lossScale = 1.0,
                   bool *skipped = nullptr);

private:
  DeviceOptimizer(DeviceEngine &engine, DeviceBackend &backend) : engine(engine), backend(backend) {}
  /// Every gradient times `factor` (the scale kernel).
  std::string scaleGradients(double factor);
  /// The optimizer kernel for `op` whose run-time argument `arg` has C type `cType`.
  const codegen::CudaKernel *find(const std::string &op, const std::string &arg, const std::string &cType) const;

  DeviceEngine &engine;
  DeviceBackend &backend;
  std::vector<codegen::CudaKernel> kernels;
  double *partial = nullptr, *total = nullptr; // device: the partial sums of one tensor, the running total
};

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_DEVICEOPTIMIZER_H
