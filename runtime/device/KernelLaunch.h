//===- KernelLaunch.h - A generated kernel's parameters bound to a plan step ---*- C++ -*-===//
//
// The one place that turns a kernel's parameter list (codegen::KernelArg) into the values a launch passes: the
// step's buffers as device addresses and its integer attributes are fixed when the step is bound; the run-time
// values (tp_rank, dropout_seed, training, loss_scale, index_status, workspace) are written into their slots before each
// launch. The device engine and the step checker (test/unit/cuda/StepChecker, on any backend) both bind through it.
// MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_KERNELLAUNCH_H
#define MEGATRON_RUNTIME_DEVICE_KERNELLAUNCH_H

#include "megatron/CodeGen/CudaKernels.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace megatron::device {

/// The values a launch supplies by name (codegen::ArgSource::Runtime).
struct RuntimeValues {
  int tpRank = 0;
  std::uint64_t dropoutSeed = 0;
  bool training = true;
  double lossScale = 1.0;
  void *indexStatus = nullptr; ///< a device word (unsigned long long) the launcher set to ~0
  void *workspace = nullptr;   ///< the runtime's device workspace for steps joined by collectives
};

class KernelLaunch {
public:
  /// Binds `kernel`'s parameters to `step`, whose buffer `id` lives at address(id). Fails, naming the kernel and
  /// the parameter, on an operand the step does not have or a run-time value of unknown name.
  static std::optional<KernelLaunch> bind(const codegen::CudaKernel &kernel, const plan::Step &step,
                                          const std::function<void *(int)> &address, std::string &error);

  /// The argument array for one launch (args[i] points at parameter i's value), with `values` written into the
  /// run-time slots. Valid until the next call.
  void **arguments(const RuntimeValues &values);

  const codegen::CudaKernel &kernel() const { return *kernelPtr; }
  /// Whether the kernel takes the index-status word (it checks ids or labels).
  bool reportsIndices() const;

private:
  explicit KernelLaunch(const codegen::CudaKernel &kernel) : kernelPtr(&kernel) {}

  const codegen::CudaKernel *kernelPtr;
  std::vector<std::byte> slots; // 8 bytes per parameter, in the parameter's own C type
  std::vector<void *> pointers;
  std::vector<std::size_t> runtimeSlots;
};

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_KERNELLAUNCH_H
