//===- SimulatedKernels.h - The test models' kernels, compiled once for the simulator ---*- C++ -*-===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIMULATEDKERNELS_H
#define MEGATRON_TEST_UNIT_CUDA_SIMULATEDKERNELS_H

#include "sim/KernelLibrary.h"
#include "sim/SimulatedBackend.h"

#include <memory>
#include <string>

namespace megatron::test {

struct SimulatedKernels {
  cudasim::KernelLibrary library{MEGATRON_SIM_CACHE};
  std::string error;    ///< empty, or the kernels that did not compile and why
  double seconds = 0;   ///< spent compiling and loading
};

/// Every kernel that the code generator emits for the test models (TestModels.h: the GPT, the LLaMA-style model
/// in f32, bf16 and f16, both sharded over two tensor-parallel ranks, the GPT of odd shapes, BERT and T5) and their
/// optimizers, compiled for the simulator on first use, on as many
/// compilers as the machine has cores, and loaded; the shared objects are cached in the build tree.
SimulatedKernels &simulatedKernels();

/// A fresh simulated backend over simulatedKernels()' library, or null with the kernels' compile errors: what the
/// backend-generic checks (ModelStepChecks.h, EngineComparison.h, OptimizerKernelChecks.h) run on without a GPU.
std::unique_ptr<cudasim::SimulatedBackend> newSimulatedBackend(std::string &error);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_SIMULATEDKERNELS_H
