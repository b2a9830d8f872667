//===- Gemm.cpp - The kernels' one entry point to OpenBLAS ---------------------===//
//
// Every matrix product of the library goes through detail::gemm: row-major cblas_{s,d}gemm with the dimension
// checks OpenBLAS's 32-bit interface needs. A product called outside an OpenMP region is split into blocks of rows
// of C (or of columns, when C is wide) over the calling thread's team, each block one single-threaded OpenBLAS
// call: the kernels use one pool of threads, not OpenMP's and OpenBLAS's spinning against each other
// (Threads.cpp). No block splits the inner dimension. For a given thread count the blocks, and so the results, are
// the same in every run; across thread counts they agree to rounding, not bitwise (OpenBLAS picks its kernel by
// the block's size: its small-matrix path computes a small block in another order).
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Parallel.h"

#include <cblas.h>

#include <algorithm>
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

/// Below this many multiply-adds a product runs on the calling thread: starting the team costs more than it saves.
constexpr double kMinSplitWork = 1 << 20;
/// Blocks are multiples of this many rows or columns: whole register tiles of OpenBLAS's kernels.
constexpr Index kBlockAlign = 16;

/// Calls `gemmBlock(m', n', a', b', c')` on blocks of C covering it, in parallel over the calling thread's team.
template <typename T, typename Block>
void splitOverTeam(bool transA, bool transB, Index m, Index n, Index k, const T *a, Index lda, const T *b, Index ldb,
                   T *c, Index ldc, Block gemmBlock) {
  int threads = omp_get_level() > 0 ? 1 : omp_get_max_threads();
  bool byRows = m >= n;
  Index extent = byRows ? m : n;
  Index parts = std::min<Index>(threads, ceilDiv(extent, kBlockAlign));
  if (parts <= 1 || static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < kMinSplitWork) {
    gemmBlock(m, n, a, b, c);
    return;
  }
  Index width = ceilDiv(ceilDiv(extent, parts), kBlockAlign) * kBlockAlign;
  parts = ceilDiv(extent, width);
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(parts))
  for (Index p = 0; p < parts; ++p) {
    Range r = block(extent, width, p);
    if (byRows) // rows of op(A): rows of A, or columns when A is transposed
      gemmBlock(r.end - r.begin, n, transA ? a + r.begin : a + r.begin * lda, b, c + r.begin * ldc);
    else // columns of op(B): columns of B, or rows when B is transposed
      gemmBlock(m, r.end - r.begin, a, transB ? b + r.begin * ldb : b + r.begin, c + r.begin);
  }
}

/// cblas_sgemm or cblas_dgemm, row-major.
void blasGemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void blasGemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double *a, int lda,
              const double *b, int ldb, double beta, double *c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void gemmOverTeam(bool transA, bool transB, Index m, Index n, Index k, T alpha, const T *a, Index lda, const T *b,
                  Index ldb, T beta, T *c, Index ldc) {
  assert(fitsBlas(m) && fitsBlas(n) && fitsBlas(k) && fitsBlas(lda) && fitsBlas(ldb) && fitsBlas(ldc));
  if (handleEmpty(m, n, k, beta, c, ldc))
    return;
  CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
  splitOverTeam(transA, transB, m, n, k, a, lda, b, ldb, c, ldc,
                [&](Index mm, Index nn, const T *aa, const T *bb, T *cc) {
                  blasGemm(ta, tb, int(mm), int(nn), int(k), alpha, aa, int(lda), bb, int(ldb), beta, cc, int(ldc));
                });
}

} // namespace

void gemm(bool transA, bool transB, Index m, Index n, Index k, float alpha, const float *a, Index lda,
          const float *b, Index ldb, float beta, float *c, Index ldc) {
  gemmOverTeam(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool transA, bool transB, Index m, Index n, Index k, double alpha, const double *a, Index lda,
          const double *b, Index ldb, double beta, double *c, Index ldc) {
  gemmOverTeam(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

} // namespace megatron::cpu::detail
