//===- Gemm.cpp - The kernels' one entry point to OpenBLAS ---------------------===//
//
// Every matrix product of the library goes through detail::gemm: row-major cblas_{s,d}gemm with the dimension
// checks OpenBLAS's 32-bit interface needs. OpenBLAS splits a product over threads by blocks of C, never over
// the inner dimension, so its results do not depend on scheduling.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Parallel.h"

#include <cblas.h>

#include <climits>

namespace megatron::cpu::detail {

namespace {

bool fitsBlas(Index v) { return v >= 0 && v <= INT_MAX; }

// k = 0 is a product of empty matrices: C = beta·C, which OpenBLAS may skip.
template <typename T> bool handleEmpty(Index m, Index n, Index k, T beta, T *c, Index ldc) {
  if (m == 0 || n == 0)
    return true;
  if (k != 0)
    return false;
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j)
      c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
  return true;
}

} // namespace

void gemm(bool transA, bool transB, Index m, Index n, Index k, float alpha, const float *a, Index lda,
          const float *b, Index ldb, float beta, float *c, Index ldc) {
  assert(fitsBlas(m) && fitsBlas(n) && fitsBlas(k) && fitsBlas(lda) && fitsBlas(ldb) && fitsBlas(ldc));
  if (handleEmpty(m, n, k, beta, c, ldc))
    return;
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, int(m), int(n),
              int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

void gemm(bool transA, bool transB, Index m, Index n, Index k, double alpha, const double *a, Index lda,
          const double *b, Index ldb, double beta, double *c, Index ldc) {
  assert(fitsBlas(m) && fitsBlas(n) && fitsBlas(k) && fitsBlas(lda) && fitsBlas(ldb) && fitsBlas(ldc));
  if (handleEmpty(m, n, k, beta, c, ldc))
    return;
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, int(m), int(n),
              int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

} // namespace megatron::cpu::detail
