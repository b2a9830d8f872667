//===- KernelLibrary.h - Generated kernels compiled by g++ for the simulator ---*- C++ -*-===//
//
// The generated source of each kernel, unchanged, is compiled with -DMT_SIMULATE (Common.cuh then includes
// CudaSim.h) into a shared object, together with an entry that takes the parameters as cudaLaunchKernel does: an
// array of pointers to their values. Shared objects are cached on disk under a hash of the source, the
// simulator's headers and the compiler's command, so a rerun compiles only what changed; misses compile in
// parallel, one process at a time (a lock file). Loaded objects resolve the built-ins (threadIdx, __syncthreads, ...) against the test executable.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIM_KERNELLIBRARY_H
#define MEGATRON_TEST_UNIT_CUDA_SIM_KERNELLIBRARY_H

#include "megatron/CodeGen/CudaKernels.h"

#include <map>
#include <string>
#include <vector>

namespace megatron::cudasim {

/// Calls the generated __global__ function with args[i] pointing at its i-th parameter's value.
using KernelEntry = void (*)(void **args);

class KernelLibrary {
public:
  /// Shared objects live in `cacheDir` (created when needed).
  explicit KernelLibrary(std::string cacheDir);
  ~KernelLibrary();
  KernelLibrary(const KernelLibrary &) = delete;
  KernelLibrary &operator=(const KernelLibrary &) = delete;

  /// Compiles the kernels that are not cached, `jobs` compilers at a time, and loads every one (a kernel already
  /// loaded by name is skipped). Returns an empty string, or each failure with the kernel's name and the
  /// compiler's output.
  std::string load(const std::vector<codegen::CudaKernel> &kernels, int jobs);

  /// Runs a loaded kernel over its own launch configuration. Returns an empty string or the simulator's error.
  std::string launch(const codegen::CudaKernel &kernel, void **args) const;

  int compiled() const { return compiledCount; }
  int cached() const { return cachedCount; }

private:
  std::string cacheDir;
  std::map<std::string, KernelEntry> entries; // by kernel name
  std::vector<void *> handles;
  int compiledCount = 0, cachedCount = 0;
};

/// What g++ compiles for `kernel`: its source followed by the entry `mt_sim_entry`.
std::string simulatorSource(const codegen::CudaKernel &kernel);

} // namespace megatron::cudasim

#endif // MEGATRON_TEST_UNIT_CUDA_SIM_KERNELLIBRARY_H
