//===- CudaBackend.h - The device engine's backend on a real GPU ---*- C++ -*-===//
//
// The CUDA implementation of device::DeviceBackend: device memory from cudaMalloc, everything ordered on one
// stream, generated kernels compiled by NVRTC for the device's architecture (through the on-disk KernelCache)
// and loaded as CUBINs with cudaLibraryLoadData, launched with cudaLaunchKernel, and GEMMs on cuBLASLt
// (CUBLAS_COMPUTE_32F, the BIAS epilogue, a heuristic-chosen algorithm cached per shape). Only cudart, NVRTC and
// cuBLASLt are linked, never libcuda: cudart loads the driver when the backend is created, so a binary built
// with this starts on machines without a GPU and says why there is none.
//
// Built without the CUDA toolkit, createCudaBackend fails with a message saying so; callers need no #ifdef.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_CUDABACKEND_H
#define MEGATRON_RUNTIME_CUDA_CUDABACKEND_H

#include "runtime/device/DeviceBackend.h"

#include <memory>
#include <string>

namespace megatron::cuda {

struct CudaBackendOptions {
  int device = 0;             ///< as CUDA numbers them (after CUDA_VISIBLE_DEVICES)
  std::string kernelCache;    ///< empty: KernelCache::defaultDirectory() ($MEGATRON_KERNEL_CACHE, ...)
  int compileThreads = 0;     ///< NVRTC compilations run at once in prepare(); 0: the machine's cores
  std::size_t gemmWorkspaceBytes = std::size_t(32) << 20; ///< cuBLASLt's workspace (Hopper wants 32 MiB)
};

/// What a CUDA backend can say beyond the DeviceBackend calls: for benchmarks and logs.
class CudaBackend : public device::DeviceBackend {
public:
  /// The stream every call is issued on (a cudaStream_t): NCCL's collectives are issued on it too, so that they are
  /// ordered with the kernels around them (NcclCommunicator.h).
  virtual void *nativeStream() const = 0;
  /// The device's index, as CUDA numbers them.
  virtual int deviceIndex() const = 0;
  /// Kernels compiled by NVRTC, and found in the disk cache, by prepare() so far.
  virtual int kernelsCompiled() const = 0;
  virtual int kernelsFromCache() const = 0;
};

/// The device `options.device`, with its stream, cuBLASLt handle and workspace; or null and `error`, which for a
/// missing device begins "no CUDA device" (as selectCudaDevice's).
std::unique_ptr<CudaBackend> createCudaBackend(const CudaBackendOptions &options, std::string &error);

} // namespace megatron::cuda

#endif // MEGATRON_RUNTIME_CUDA_CUDABACKEND_H
