//===- StepChecker.h - A plan's generated kernels against the CPU engine, step by step ---*- C++ -*-===//
//
// The numerics check of every generated kernel, on any device::DeviceBackend: the host CUDA simulator in CI
// (sim/SimulatedBackend), a GPU through cuda::createCudaBackend. The device holds the plan's arenas laid out as
// planned, in the buffers' real storage types (bf16 and f16 as two bytes, where the CPU engine keeps them as
// f32), so aliasing and in-place steps are what the device engine will see. Before a generated step the checker
// poisons its outputs (NaN bytes), uploads its inputs and its accumulating outputs from the CPU engine, launches
// the step's kernels on the backend as the device engine binds them (KernelLaunch), then lets the CPU engine run
// the step, downloads the arenas and compares every output. It also checks that the kernels wrote nothing
// outside their outputs and that the index-status word reports what the CPU kernel reported.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_STEPCHECKER_H
#define MEGATRON_TEST_UNIT_CUDA_STEPCHECKER_H

#include "DeviceMemory.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/device/DeviceBackend.h"
#include "runtime/engine/Engine.h"

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace megatron::test {

/// How far a generated output may be from the CPU's. Relative tolerances are of the output's scale (its largest
/// |CPU value|); a 16-bit output passes within either that relative tolerance or `sixteenBitUlps` units in the
/// last place of its format. Each backend's test states its values and why.
struct StepTolerances {
  double f32 = 1e-5;
  double f64 = 1e-12;
  int sixteenBitUlps = 1;
  /// The tensor-core kernels (a kernel role containing "tensor_core": AttentionTensorCore.cuh) round
  /// probabilities and dS to their 16-bit input type before a product, where the CPU multiplies in f32. Their
  /// outputs may differ by this many unit roundoffs of that type (bf16 2^-8, f16 2^-11) of the output's scale:
  /// the difference is bounded by u·max|v| (or |q|, |k|), which exceeds the output's own scale by a small factor.
  double tensorCoreRoundoffs = 4;
};

/// The differences of one op from the CPU's over all its steps, for its outputs of one dtype.
struct OpSummary {
  int steps = 0;
  double worstRelative = 0; ///< |device − cpu| / the output's scale (its largest |cpu| value)
  int worstUlps = 0;        ///< bf16 and f16 outputs: the distance in units in the last place of the format
};

class StepChecker {
public:
  /// Allocates the plan's arenas and an index-status word on `backend`. The kernels of `kernels`
  /// (codegen::generateKernels of the engine's plan) must already be prepared on it. `engine`, `kernels` and
  /// `backend` must outlive the checker. Null and `error` when the backend refuses an allocation.
  static std::unique_ptr<StepChecker> create(runtime::Engine &engine, const codegen::KernelSet &kernels,
                                             device::DeviceBackend &backend, const StepTolerances &tolerances,
                                             std::string &error);

  /// Runs step `index` of `program` on the CPU engine and, when the step is Generated, its kernels on the backend
  /// first. Returns an empty string, or what went wrong: a backend failure, an output beyond its tolerance (naming
  /// the step, kernel, output, worst element and both values), a stray write, an index status that differs from
  /// the CPU's, or the CPU engine's own error.
  std::string runStep(const std::string &program, size_t index, const runtime::RunContext &context);

  /// Per (op, output dtype): how many steps were checked and the worst differences seen.
  const std::map<std::pair<std::string, plan::DType>, OpSummary> &summary() const { return ops; }
  int stepsChecked() const { return checked; }

private:
  StepChecker(runtime::Engine &engine, const codegen::KernelSet &kernels, device::DeviceBackend &backend,
              const StepTolerances &tolerances);

  std::byte *deviceAddress(int buffer) const;
  std::string upload(int buffer);
  /// Copies every arena to the host, into `into` (one vector per arena).
  std::string download(std::vector<std::vector<std::byte>> &into);
  std::string launchKernels(const plan::Step &step, const codegen::StepPlan &stepPlan,
                            const runtime::RunContext &context, bool &reportsIndices);
  /// `rounded`: the relative tolerance of an output of a tensor-core kernel (0 for the others).
  std::string compareOutput(const plan::Step &step, size_t output, const std::string &where, double rounded);
  std::string checkStrayWrites(const plan::Step &step, const std::string &where) const;

  runtime::Engine &engine;
  const codegen::KernelSet &kernels;
  device::DeviceBackend &backend;
  StepTolerances tolerances;
  std::map<std::pair<std::string, int>, const codegen::StepPlan *> stepPlans;
  std::vector<DeviceMemory> arenas; // per plan::Arena; empty for an arena of no bytes
  DeviceMemory indexStatus;         // one unsigned long long
  std::vector<std::vector<std::byte>> before, after; // the arenas around the step's launches
  std::map<std::pair<std::string, plan::DType>, OpSummary> ops;
  int checked = 0;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_STEPCHECKER_H
