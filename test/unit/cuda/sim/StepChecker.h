//===- StepChecker.h - A plan's generated kernels against the CPU engine, step by step ---*- C++ -*-===//
//
// The simulator's device memory is the plan's arenas laid out as planned, in the buffers' real storage types
// (bf16 and f16 as two bytes, where the CPU engine keeps them as f32), so aliasing and in-place steps are what a
// GPU would see. Before a generated step the checker poisons its outputs (NaN bytes), copies its inputs and its
// accumulating outputs from the CPU engine, runs the step's kernels in the simulator, then lets the CPU engine run
// the step and compares every output. It also checks that the kernels wrote nothing outside their outputs and
// that the index-status word reports what the CPU kernel reported.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIM_STEPCHECKER_H
#define MEGATRON_TEST_UNIT_CUDA_SIM_STEPCHECKER_H

#include "KernelLibrary.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/engine/Engine.h"

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace megatron::cudasim {

/// The differences of one op from the CPU's over all its steps, for its outputs of one dtype.
struct OpSummary {
  int steps = 0;
  double worstRelative = 0; ///< |device − cpu| / the output's scale (its largest |cpu| value)
  int worstUlps = 0;        ///< bf16 and f16 outputs: the distance in units in the last place of the format
};

class StepChecker {
public:
  StepChecker(runtime::Engine &engine, const codegen::KernelSet &kernels, const KernelLibrary &library);

  /// Runs step `index` of `program` on the CPU engine and, when the step is Generated, its kernels in the
  /// simulator first. Returns an empty string, or what went wrong: a simulator failure, an output beyond its
  /// tolerance (naming the step, kernel, output, worst element and both values), a stray write, an index status
  /// that differs from the CPU's, or the CPU engine's own error.
  std::string runStep(const std::string &program, size_t index, const runtime::RunContext &context);

  /// Per (op, output dtype): how many steps were checked and the worst differences seen.
  const std::map<std::pair<std::string, plan::DType>, OpSummary> &summary() const { return ops; }
  int stepsChecked() const { return checked; }

private:
  std::byte *deviceAddress(int buffer);
  void upload(int buffer);
  std::string compareOutput(const plan::Step &step, size_t output, const std::string &where);
  std::string checkStrayWrites(const plan::Step &step, const std::string &where);

  runtime::Engine &engine;
  const codegen::KernelSet &kernels;
  const KernelLibrary &library;
  std::map<std::pair<std::string, int>, const codegen::StepPlan *> stepPlans;
  std::vector<std::vector<std::byte>> arenas, before;
  unsigned long long indexStatus = 0;
  std::map<std::pair<std::string, plan::DType>, OpSummary> ops;
  int checked = 0;
};

} // namespace megatron::cudasim

#endif // MEGATRON_TEST_UNIT_CUDA_SIM_STEPCHECKER_H
