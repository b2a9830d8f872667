//===- CublasLtGemm.h - The device engine's GEMMs on cuBLASLt ---*- C++ -*-===//
//
// device::Gemm is row-major; cuBLASLt is column-major. A row-major D[m, n] = op(A)·op(B) is the column-major
// Dᵀ[n, m] = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read column-major is its transpose, so the call swaps the
// operands and keeps each operand's own transpose flag: no data moves. The bias of device::Gemm (one value per
// column n of D) is then one value per row of Dᵀ, which is what CUBLASLT_EPILOGUE_BIAS broadcasts. The GeLU
// epilogues' aux matrix is laid out like D (row-major [m, n] with D's leading dimension), so it too is the
// column-major [n, m] matrix cuBLASLt expects, with the same leading dimension.
//
// Descriptors and the algorithm that cublasLtMatmulAlgoGetHeuristic picks are built once per distinct shape
// (sizes, types, leading dimensions, transposes, bias, epilogue and aux matrix, and the operands' and the aux
// matrix's pointer alignment, which the heuristic is told: it assumes 256 bytes unless told otherwise, and a
// plan's buffers are 64-byte aligned) and kept: a training step asks for the same few dozen shapes every
// micro-batch. Private to runtime/cuda; compiled only with the CUDA toolkit.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_CUBLASLTGEMM_H
#define MEGATRON_RUNTIME_CUDA_CUBLASLTGEMM_H

#include "runtime/device/DeviceBackend.h"

#include <map>
#include <memory>
#include <string>

#if MEGATRON_HAVE_CUDA
#include <cublasLt.h>
#include <cuda_runtime_api.h>

namespace megatron::cuda {

class CublasLtGemm {
public:
  /// A cuBLASLt handle issuing on `stream`, with a workspace of `workspaceBytes` on the current device.
  static std::unique_ptr<CublasLtGemm> create(cudaStream_t stream, std::size_t workspaceBytes, std::string &error);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm &) = delete;
  CublasLtGemm &operator=(const CublasLtGemm &) = delete;

  /// Issues `call` on the stream: "" or what cuBLASLt refused (naming the shape and types).
  std::string run(const device::Gemm &call);

private:
  struct Shape; // the descriptors and algorithm of one distinct call shape
  CublasLtGemm() = default;
  std::string build(const device::Gemm &call, Shape &shape);

  cublasLtHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  void *workspace = nullptr;
  std::size_t workspaceBytes = 0;
  std::map<std::string, std::unique_ptr<Shape>> shapes; // by shapeKey
};

} // namespace megatron::cuda

#endif // MEGATRON_HAVE_CUDA
#endif // MEGATRON_RUNTIME_CUDA_CUBLASLTGEMM_H
