//===- SimulatedBackend.h - The host simulator as a DeviceBackend ---*- C++ -*-===//
//
// Device memory is host memory (aligned like cudaMalloc's); kernels run in the host simulator through a
// KernelLibrary, with the simulator's barriers and shuffles; GEMMs are computed on the host as cuBLASLt computes
// them with CUBLAS_COMPUTE_32F: products summed in f32, alpha, beta and the bias applied in f32, the GeLU
// epilogues on that f32 value (the aux matrix stores it rounded, or is read back), one rounding to the output's
// type. So the device engine's orchestration (arenas, bindings, launch order, the GEMMs' shapes and
// accumulation) is tested without a GPU; only the backend differs on one.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIM_SIMULATEDBACKEND_H
#define MEGATRON_TEST_UNIT_CUDA_SIM_SIMULATEDBACKEND_H

#include "KernelLibrary.h"

#include "runtime/device/DeviceBackend.h"

#include <chrono>
#include <map>
#include <optional>

namespace megatron::cudasim {

class SimulatedBackend : public device::DeviceBackend {
public:
  /// Kernels are compiled into (or found in) `library` on `jobs` compilers.
  SimulatedBackend(KernelLibrary &library, int jobs) : library(library), jobs(jobs) {}
  ~SimulatedBackend() override;

  std::string describe() const override { return "the host CUDA simulator"; }
  void *allocate(std::size_t bytes, std::string &error) override;
  void release(void *memory) override;
  std::string copyToDevice(void *device, const void *host, std::size_t bytes) override;
  std::string copyToHost(void *host, const void *device, std::size_t bytes) override;
  std::string copyOnDevice(void *destination, const void *source, std::size_t bytes) override;
  std::string fill(void *device, unsigned char value, std::size_t bytes) override;
  std::string prepare(const std::vector<codegen::CudaKernel> &kernels) override;
  std::string launch(const codegen::CudaKernel &kernel, void **args) override;
  std::string gemm(const device::Gemm &call) override;
  /// Every call runs to completion before it returns: nothing to wait for.
  std::string synchronize() override { return {}; }
  /// So a marker holds the host's clock at the time it is recorded: all the work before it is done by then.
  std::string createMarker(device::TimingMarker *&marker) override;
  void destroyMarker(device::TimingMarker *marker) override;
  std::string recordMarker(device::TimingMarker *marker) override;
  std::string elapsedMilliseconds(device::TimingMarker *start, device::TimingMarker *end,
                                  double &milliseconds) override;

  /// What the engine asked for, for the tests: launches and GEMMs run, and host copies (either direction).
  int launches = 0, gemms = 0, hostCopies = 0;

private:
  KernelLibrary &library;
  int jobs;
  /// Base → bytes. A call on memory not allocated here is an engine bug, reported as one.
  std::map<const std::byte *, std::size_t> allocations;
  /// Whether [memory, memory + bytes) lies within one allocation.
  bool owns(const void *memory, std::size_t bytes = 1) const;
  /// The markers made here, with the host time each was last recorded at (none: never recorded).
  std::map<const device::TimingMarker *, std::optional<std::chrono::steady_clock::time_point>> markers;
};

} // namespace megatron::cudasim

#endif // MEGATRON_TEST_UNIT_CUDA_SIM_SIMULATEDBACKEND_H
