//===- Parallel.h - Threads, instruction-set clones and GEMM for the kernels -*- C++ -*-===//
//
// Internal to runtime/cpu. What every kernel file shares: how work is split over threads, how hot loops get
// AVX2/AVX-512 code without requiring it, fixed-order reductions, and the one entry point to OpenBLAS.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CPU_PARALLEL_H
#define MEGATRON_RUNTIME_CPU_PARALLEL_H

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include <omp.h>

// The library is built for baseline x86-64 (SSE2) so that it runs anywhere. Loops that dominate a kernel's
// time are compiled three times, for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the baseline, and the loader
// picks the best one for the machine (GCC's target_clones, an ifunc). Put it on small non-inline functions that
// hold a loop, never on a function containing an OpenMP pragma (the outlined body would not be cloned).
// Consequence: results are bitwise reproducible on one machine, but may differ in the last bits between machines
// of different instruction sets (FMA contraction), as OpenBLAS's do.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MEGATRON_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), noinline))
#else
#define MEGATRON_CPU_CLONES
#endif

namespace megatron::cpu::detail {

/// Below this many elements of work a kernel stays on one thread: forking a team costs microseconds.
constexpr Index kMinParallelWork = Index(1) << 14;

/// Whether a loop over `work` elements is worth a thread team.
inline bool worthParallel(Index work) { return work >= kMinParallelWork; }

/// Lanes of the explicit partial sums of every reduction (`acc[l] += x[i + l]`). Writing the lanes out lets the
/// compiler vectorize without reassociating, so a row's sum is the same whatever the instruction set and
/// alignment: lane l sums the elements i ≡ l (mod kLanes) in order, then the lanes are added in order.
constexpr int kLanes = 16;

template <typename T> __attribute__((always_inline)) inline T sumLanes(const T *acc) {
  T s = 0;
  for (int l = 0; l < kLanes; ++l)
    s += acc[l];
  return s;
}

/// Σ_{i<n} term(i) in the lane order above. Always inlined, so that it is compiled for the caller's clone; keep
/// term simple (loads and arithmetic; exp first into a buffer) or the lanes do not vectorize.
template <typename T, typename Term> __attribute__((always_inline)) inline T laneSum(Index n, Term term) {
  T acc[kLanes] = {};
  Index i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l)
      acc[l] += term(i + l);
  for (int l = 0; i < n; ++i, ++l)
    acc[l] += term(i);
  return sumLanes(acc);
}

/// max_{i<n} x[i] (−inf for n = 0). A maximum is exact in any order, so unlike sums it may be an OpenMP SIMD
/// reduction (GCC does not vectorize the lane form of a max). Only NaN inputs could make the order visible, and
/// those give a NaN softmax either way.
template <typename T> __attribute__((always_inline)) inline T laneMax(Index n, const T *x) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (Index i = 0; i < n; ++i)
    m = x[i] > m ? x[i] : m;
  return m;
}

/// Columns [begin, end) of block `b` when `n` columns are cut into blocks of `width`.
struct Range {
  Index begin;
  Index end;
};
inline Range block(Index n, Index width, Index b) { return {b * width, std::min(n, (b + 1) * width)}; }
inline Index ceilDiv(Index a, Index b) { return (a + b - 1) / b; }

/// Reductions over rows (dweight, dbias, dtable) run over blocks of columns, each block summing its rows in
/// order. Blocks are as wide as an even split over the threads allows (whole rows are read when one thread does
/// it all), a multiple of 16 elements so that two threads never write one cache line, and at most
/// kMaxColumnBlock so that a block's accumulators fit on the stack and in L1.
constexpr Index kColumnBlock = 64;
constexpr Index kMaxColumnBlock = 1024;
inline Index columnBlockWidth(Index cols) {
  const Index perThread = (cols + numThreads() - 1) / numThreads();
  return std::min(kMaxColumnBlock, std::max(kColumnBlock, (perThread + 15) / 16 * 16));
}

/// C = alpha·op(A)·op(B) + beta·C, row-major, through OpenBLAS (cblas_sgemm / cblas_dgemm). beta = 0 overwrites C
/// (NaNs in C are not propagated). Called outside an OpenMP parallel region, it splits C into blocks of rows (or
/// columns) over the calling thread's OpenMP team, each block one single-threaded OpenBLAS call; inside a region
/// (attention's per-head products) it runs in the calling thread. OpenBLAS's own threads are never used, so one
/// pool of threads (OpenMP's) runs everything.
void gemm(bool transA, bool transB, Index m, Index n, Index k, float alpha, const float *a, Index lda,
          const float *b, Index ldb, float beta, float *c, Index ldc);
void gemm(bool transA, bool transB, Index m, Index n, Index k, double alpha, const double *a, Index lda,
          const double *b, Index ldb, double beta, double *c, Index ldc);

} // namespace megatron::cpu::detail

#endif // MEGATRON_RUNTIME_CPU_PARALLEL_H
