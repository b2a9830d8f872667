//===- CublasLtGemm.cpp - The device engine's GEMMs on cuBLASLt ------------------===//

#include "runtime/cuda/CublasLtGemm.h"

#if MEGATRON_HAVE_CUDA

#include <algorithm>
#include <cstdint>

namespace megatron::cuda {

namespace {

std::string failure(const char *call, cublasStatus_t status) {
  return std::string(call) + " failed: " + cublasLtGetStatusName(status) + " (" + cublasLtGetStatusString(status) +
         ")";
}

bool cudaTypeOf(plan::DType type, cudaDataType_t &cuda) {
  switch (type) {
  case plan::DType::F32:
    cuda = CUDA_R_32F;
    return true;
  case plan::DType::BF16:
    cuda = CUDA_R_16BF;
    return true;
  case plan::DType::F16:
    cuda = CUDA_R_16F;
    return true;
  case plan::DType::F64:
    cuda = CUDA_R_64F;
    return true;
  default:
    return false;
  }
}

/// The alignment cuBLASLt may assume of `pointer`: its largest power-of-two divisor, up to the 256 bytes the
/// heuristic assumes by default. A plan's buffers are only 64-byte aligned (plan::kAlignment), and an algorithm
/// chosen for 256-byte alignment would read them misaligned.
uint32_t alignmentOf(const void *pointer) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  return address == 0 ? 256u : uint32_t(std::min<uintptr_t>(address & (~address + 1), 256));
}

const char *epilogueName(device::GemmEpilogue epilogue) {
  switch (epilogue) {
  case device::GemmEpilogue::None:
    return "none";
  case device::GemmEpilogue::GeluAux:
    return "gelu_aux";
  case device::GemmEpilogue::DGelu:
    return "dgelu";
  }
  return "?";
}

/// "m=4096 n=1024 k=1024 A=bf16 (ld 1024) B=bf16ᵀ (ld 1024) D=f32 (ld 1024) bias=f32 align 64/64/256", with
/// " epilogue=gelu_aux aux=bf16 (ld 1024) align 64" for a GeLU epilogue: the cache key, and how messages name a
/// call.
std::string describeShape(const device::Gemm &g) {
  auto operand = [](const device::GemmOperand &o) {
    return std::string(plan::toString(o.dtype)) + (o.transposed ? "^T" : "") + " (ld " + std::to_string(o.ld) + ")";
  };
  std::string key = "m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) +
                    " A=" + operand(g.a) + " B=" + operand(g.b) + " D=" + plan::toString(g.cType) + " (ld " +
                    std::to_string(g.ldc) + ")" + (g.bias ? std::string(" bias=") + plan::toString(g.biasType) : "") +
                    " align " + std::to_string(alignmentOf(g.a.data)) + "/" + std::to_string(alignmentOf(g.b.data)) +
                    "/" + std::to_string(alignmentOf(g.c));
  if (g.epilogue != device::GemmEpilogue::None)
    key += std::string(" epilogue=") + epilogueName(g.epilogue) + " aux=" + plan::toString(g.auxType) + " (ld " +
           std::to_string(g.auxLd) + ") align " + std::to_string(alignmentOf(g.aux));
  return key;
}

/// The cuBLASLt epilogue of `g`, or an empty string and `error` where cuBLASLt cannot run it. From cublasLt.h
/// (CUDA 13): the GeLU epilogues' aux matrix (CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER) is the GeLU's input, its
/// leading dimension (_AUX_LD) "must be divisible by 8 and be no less than the number of rows in the output
/// matrix" (n here: cuBLASLt's D is our Dᵀ, and so is the aux matrix, laid out like D), and its type
/// (_AUX_DATA_TYPE) is D's outside fp8. DGELU reads it and has no bias form besides DGELU_BGRAD.
bool epilogueOf(const device::Gemm &g, cublasLtEpilogue_t &epilogue, std::string &error) {
  switch (g.epilogue) {
  case device::GemmEpilogue::None:
    epilogue = g.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    return true;
  case device::GemmEpilogue::GeluAux:
    epilogue = g.bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    break;
  case device::GemmEpilogue::DGelu:
    if (g.bias) {
      error = "the DGELU epilogue takes no bias";
      return false;
    }
    epilogue = CUBLASLT_EPILOGUE_DGELU;
    break;
  }
  if (!g.aux || g.auxType != g.cType || g.auxLd % 8 != 0 || g.auxLd < g.n) {
    error = "a GeLU epilogue needs an aux matrix of D's type with a leading dimension divisible by 8 and at least n";
    return false;
  }
  if (g.cType == plan::DType::F64) {
    error = "cuBLASLt's GeLU epilogues need an f32 or 16-bit product";
    return false;
  }
  return true;
}

} // namespace

struct CublasLtGemm::Shape {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr; // cuBLASLt's A, B (our B, A) and D
  cublasLtMatmulAlgo_t algo{};
  bool f64 = false;
  ~Shape() {
    if (desc)
      cublasLtMatmulDescDestroy(desc);
    for (cublasLtMatrixLayout_t layout : {a, b, d})
      if (layout)
        cublasLtMatrixLayoutDestroy(layout);
  }
};

std::unique_ptr<CublasLtGemm> CublasLtGemm::create(cudaStream_t stream, std::size_t workspaceBytes,
                                                   std::string &error) {
  std::unique_ptr<CublasLtGemm> gemm(new CublasLtGemm());
  gemm->stream = stream;
  if (cublasStatus_t status = cublasLtCreate(&gemm->handle); status != CUBLAS_STATUS_SUCCESS) {
    error = failure("cublasLtCreate", status);
    return nullptr;
  }
  if (workspaceBytes > 0) {
    if (cudaError_t status = cudaMalloc(&gemm->workspace, workspaceBytes); status != cudaSuccess) {
      error = std::string("cudaMalloc of cuBLASLt's workspace failed: ") + cudaGetErrorName(status);
      return nullptr;
    }
    gemm->workspaceBytes = workspaceBytes;
  }
  return gemm;
}

CublasLtGemm::~CublasLtGemm() {
  shapes.clear();
  if (workspace)
    cudaFree(workspace);
  if (handle)
    cublasLtDestroy(handle);
}

std::string CublasLtGemm::build(const device::Gemm &g, Shape &shape) {
  cudaDataType_t aType, bType, dType, biasType = CUDA_R_32F;
  if (!cudaTypeOf(g.a.dtype, aType) || !cudaTypeOf(g.b.dtype, bType) || !cudaTypeOf(g.cType, dType) ||
      (g.bias && !cudaTypeOf(g.biasType, biasType)))
    return "cuBLASLt takes f32, bf16, f16 or f64 matrices";
  if (g.a.dtype != g.b.dtype)
    return "cuBLASLt multiplies two matrices of one type";
  shape.f64 = g.a.dtype == plan::DType::F64;
  if (shape.f64 != (g.cType == plan::DType::F64))
    return "an f64 product needs an f64 output";
  const cublasComputeType_t compute = shape.f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  const cudaDataType_t scale = shape.f64 ? CUDA_R_64F : CUDA_R_32F;

  cublasStatus_t status = cublasLtMatmulDescCreate(&shape.desc, compute, scale);
  if (status != CUBLAS_STATUS_SUCCESS)
    return failure("cublasLtMatmulDescCreate", status);
  // cuBLASLt's A is our B and its B our A (see the header); each keeps its own transpose.
  const cublasOperation_t transA = g.b.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t transB = g.a.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof transA);
  cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof transB);
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  std::string error;
  if (!epilogueOf(g, epilogue, error))
    return error;
  cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  if (g.bias)
    cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType, sizeof biasType);
  if (g.epilogue != device::GemmEpilogue::None) {
    // The aux pointer is set here too: the heuristic reads its alignment from it (cublasLt.h), and run() sets it
    // again for each call. Its leading dimension is D's (see epilogueOf); its type is D's.
    const int64_t auxLd = g.auxLd;
    const int32_t auxType = dType;
    cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux, sizeof g.aux);
    cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &auxLd, sizeof auxLd);
    cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, &auxType, sizeof auxType);
  }
  // Column-major views: cuBLASLt's A (our B) is [n, k] untransposed, [k, n] transposed; its B (our A) is [k, m] or
  // [m, k]; its D is [n, m]. Each leading dimension is the row-major one.
  const int64_t m = g.m, n = g.n, k = g.k;
  if ((status = cublasLtMatrixLayoutCreate(&shape.a, bType, uint64_t(g.b.transposed ? k : n),
                                           uint64_t(g.b.transposed ? n : k), g.b.ld)) != CUBLAS_STATUS_SUCCESS ||
      (status = cublasLtMatrixLayoutCreate(&shape.b, aType, uint64_t(g.a.transposed ? m : k),
                                           uint64_t(g.a.transposed ? k : m), g.a.ld)) != CUBLAS_STATUS_SUCCESS ||
      (status = cublasLtMatrixLayoutCreate(&shape.d, dType, uint64_t(n), uint64_t(m), g.ldc)) !=
          CUBLAS_STATUS_SUCCESS)
    return failure("cublasLtMatrixLayoutCreate", status);

  cublasLtMatmulPreference_t preference = nullptr;
  if ((status = cublasLtMatmulPreferenceCreate(&preference)) != CUBLAS_STATUS_SUCCESS)
    return failure("cublasLtMatmulPreferenceCreate", status);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
                                       sizeof workspaceBytes);
  // cuBLASLt's A is our B (see the header); C and D are one buffer.
  const uint32_t alignA = alignmentOf(g.b.data), alignB = alignmentOf(g.a.data), alignD = alignmentOf(g.c);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA, sizeof alignA);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignB, sizeof alignB);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alignD, sizeof alignD);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alignD, sizeof alignD);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  status = cublasLtMatmulAlgoGetHeuristic(handle, shape.desc, shape.a, shape.b, shape.d, shape.d, preference, 1,
                                          &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS)
    return failure("cublasLtMatmulAlgoGetHeuristic", status);
  if (found == 0) // with a GeLU epilogue: the compiler fuses only what cuBLASLt documents; see the message
    return std::string("cuBLASLt has no algorithm for this product") +
           (g.epilogue == device::GemmEpilogue::None ? "" : " with its GeLU epilogue (--mt-fuse-elementwise made it)");
  shape.algo = result.algo;
  return {};
}

std::string CublasLtGemm::run(const device::Gemm &g) {
  const std::string key = describeShape(g);
  auto found = shapes.find(key);
  if (found == shapes.end()) {
    auto shape = std::make_unique<Shape>();
    if (std::string error = build(g, *shape); !error.empty())
      return error + " (" + key + ")";
    found = shapes.emplace(key, std::move(shape)).first;
  }
  Shape &shape = *found->second;
  if (g.bias)
    cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias);
  if (g.epilogue != device::GemmEpilogue::None)
    cublasLtMatmulDescSetAttribute(shape.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux, sizeof g.aux);
  const double alpha64 = g.alpha, beta64 = g.beta;
  const void *alpha = shape.f64 ? static_cast<const void *>(&alpha64) : &g.alpha;
  const void *beta = shape.f64 ? static_cast<const void *>(&beta64) : &g.beta;
  cublasStatus_t status = cublasLtMatmul(handle, shape.desc, alpha, g.b.data, shape.a, g.a.data, shape.b, beta, g.c,
                                         shape.d, g.c, shape.d, &shape.algo, workspace, workspaceBytes, stream);
  return status == CUBLAS_STATUS_SUCCESS ? std::string() : failure("cublasLtMatmul", status) + " (" + key + ")";
}

} // namespace megatron::cuda

#endif // MEGATRON_HAVE_CUDA
