//===- DeviceBackend.h - What the device engine needs from a device ---*- C++ -*-===//
//
// The device engine (DeviceEngine.h) runs a plan's programs on an accelerator through this interface alone, so
// that the same orchestration runs on the host CUDA simulator in CI (test/unit/cuda/sim/SimulatedBackend) and on
// a GPU through the CUDA runtime, cuBLASLt and NCCL. The calls are those of a CUDA stream: every operation is
// ordered after the previous ones, and only copyToHost, synchronize and elapsedMilliseconds wait for them to
// finish. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_DEVICEBACKEND_H
#define MEGATRON_RUNTIME_DEVICE_DEVICEBACKEND_H

#include "megatron/CodeGen/CudaKernels.h"
#include "megatron/Plan/Plan.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace megatron::device {

/// One operand of a GEMM: a row-major matrix at `data` with leading dimension `ld` (elements between rows),
/// stored as `dtype` (f32, bf16 or f16), read as its transpose when `transposed`.
struct GemmOperand {
  const void *data = nullptr;
  plan::DType dtype = plan::DType::F32;
  std::int64_t ld = 0;
  bool transposed = false;
};

/// What a GEMM applies to each element of its f32 result before storing it (cuBLASLt's epilogues; the GeLU is the
/// tanh form, 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³)))). Either kind needs `aux`.
enum class GemmEpilogue {
  None,    ///< D = v (CUBLASLT_EPILOGUE_DEFAULT, or _BIAS with a bias)
  GeluAux, ///< D = gelu(v), and aux = v (CUBLASLT_EPILOGUE_GELU_AUX, or _GELU_AUX_BIAS with a bias)
  DGelu,   ///< D = v · gelu'(aux), aux read (CUBLASLT_EPILOGUE_DGELU); takes no bias
};

/// D[m, n] = epilogue(v), v = alpha · op(A)[m, k] · op(B)[k, n] + beta · D + bias[n] (on every row), accumulated in
/// f32 and stored once, rounded to `cType`: cuBLASLt's matmul with CUBLAS_COMPUTE_32F, C = D in place, and the
/// BIAS epilogue (GELU_AUX_BIAS, DGELU with `epilogue`). With beta = 0 the old contents of D are not read (they may
/// be anything, NaN included). `aux` is a row-major [m, n] matrix laid out like D, of `auxType` (cuBLASLt's GeLU aux
/// has D's type) with leading dimension `auxLd` (a multiple of 8, at least n): GeluAux writes v into it, rounded to
/// auxType; DGelu reads it (the pre-activation GeluAux stored).
struct Gemm {
  std::int64_t m = 0, n = 0, k = 0;
  GemmOperand a, b;
  void *c = nullptr;
  plan::DType cType = plan::DType::F32;
  std::int64_t ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  const void *bias = nullptr; ///< [n] of biasType, or null
  plan::DType biasType = plan::DType::F32;
  GemmEpilogue epilogue = GemmEpilogue::None;
  void *aux = nullptr; ///< [m, n] of auxType with leading dimension auxLd, for GeluAux (written) and DGelu (read)
  plan::DType auxType = plan::DType::F32;
  std::int64_t auxLd = 0;
};

/// A point on a backend's stream whose time the device records (a CUDA event); opaque, each backend's own.
struct TimingMarker;

class DeviceBackend {
public:
  virtual ~DeviceBackend() = default;

  /// For messages: "the host CUDA simulator", "CUDA device 0 (NVIDIA H100 ...)".
  virtual std::string describe() const = 0;

  /// Device memory of `bytes`, aligned to at least 256 bytes (the plan's offsets are multiples of 64), or null
  /// and `error`. Freed by release.
  virtual void *allocate(std::size_t bytes, std::string &error) = 0;
  virtual void release(void *memory) = 0;

  /// Every call below returns an empty string or what went wrong.
  virtual std::string copyToDevice(void *device, const void *host, std::size_t bytes) = 0;
  /// Waits for the work before it.
  virtual std::string copyToHost(void *host, const void *device, std::size_t bytes) = 0;
  virtual std::string copyOnDevice(void *destination, const void *source, std::size_t bytes) = 0;
  virtual std::string fill(void *device, unsigned char value, std::size_t bytes) = 0;

  /// Makes `kernels` launchable (compiles or loads them; a kernel already prepared is skipped).
  virtual std::string prepare(const std::vector<codegen::CudaKernel> &kernels) = 0;
  /// Launches a prepared kernel over kernel.launch; args[i] points at its i-th parameter's value, as
  /// cudaLaunchKernel's array does.
  virtual std::string launch(const codegen::CudaKernel &kernel, void **args) = 0;
  virtual std::string gemm(const Gemm &call) = 0;

  /// Waits for every operation issued so far: "" or what went wrong (on a GPU, an asynchronous fault shows here).
  /// Besides copyToHost and elapsedMilliseconds, the only call that waits; a communicator calls it before another
  /// rank reads this rank's memory, and benchmarks before they read the clock.
  virtual std::string synchronize() = 0;

  /// Timing without waiting, as CUDA events do it: a marker is made once (createMarker; destroyMarker frees it)
  /// and reused; recordMarker places it on the stream after the work issued so far and returns at once; and
  /// elapsedMilliseconds gives the time between two recorded markers, waiting for the work before `end` (so a
  /// caller reads it where it waits for the stream anyway). Reading a marker that was never recorded is an error.
  virtual std::string createMarker(TimingMarker *&marker) = 0;
  virtual void destroyMarker(TimingMarker *marker) = 0;
  virtual std::string recordMarker(TimingMarker *marker) = 0;
  virtual std::string elapsedMilliseconds(TimingMarker *start, TimingMarker *end, double &milliseconds) = 0;
};

/// Bytes of one element of `dtype` in device memory (bf16 and f16 are two bytes; the CPU engine keeps them as f32).
std::size_t deviceBytes(plan::DType dtype);

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_DEVICEBACKEND_H
