//===- Loss.cpp - Masked cross-entropy, forward and backward ------------------===//
//
// The logits are the largest activation of a language model ([tokens, vocab]); the forward reads each row once
// from memory (blockwise max and Σ exp), the backward once, with the vectorized exp. Rows run in parallel; the loss
// itself sums the rows' terms in row order, in double, so it does not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"
#include "runtime/cpu/VectorMath.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace megatron::cpu {

using namespace detail;

namespace {

constexpr Index kLseBlock = 2048; // logits per block: 8 KiB of floats, read twice from L1

// log Σ_j exp(z_j), stably, in one pass over memory: per block of kLseBlock logits its max, then Σ exp(z − max)
// from L1, merged into a running (max, sum) that is rescaled when the max grows.
template <typename T> MEGATRON_CPU_CLONES T logSumExpRow(Index n, const T *z) {
  T max = -std::numeric_limits<T>::infinity(), sum = 0;
  for (Index b0 = 0; b0 < n; b0 += kLseBlock) {
    const Index len = std::min(kLseBlock, n - b0);
    const T *zb = z + b0;
    const T blockMaximum = laneMax(len, zb);
    if (blockMaximum > max) {
      sum *= vexp(max - blockMaximum);
      max = blockMaximum;
    }
    T e[kLseBlock]; // exp first, then a plain lane sum: both loops vectorize
    for (Index j = 0; j < len; ++j)
      e[j] = vexp(zb[j] - max);
    sum += laneSum<T>(len, [&](Index j) { return e[j]; });
  }
  return max + std::log(sum);
}

// dz_j = w·exp(z_j − lse).
template <typename T> MEGATRON_CPU_CLONES void softmaxScaledRow(Index n, const T *z, T lse, T w, T *dz) {
  for (Index j = 0; j < n; ++j)
    dz[j] = w * vexp(z[j] - lse);
}

// The first row whose label is read (mask non-zero, or no mask) and lies outside [0, vocab).
template <typename T>
IndexStatus checkLabels(Index rows, Index vocab, const std::int32_t *labels, const T *mask) {
  for (Index r = 0; r < rows; ++r)
    if ((!mask || mask[r] != T(0)) && (labels[r] < 0 || labels[r] >= vocab))
      return IndexStatus{r, labels[r], vocab};
  return IndexStatus{-1, 0, vocab};
}

// Σ mask (rows without a mask: the row count), in row order.
template <typename T> double maskTotal(Index rows, const T *mask) {
  if (!mask)
    return double(rows);
  double total = 0;
  for (Index r = 0; r < rows; ++r)
    total += double(mask[r]);
  return total;
}

} // namespace

template <typename T>
IndexStatus crossEntropyForward(const CrossEntropyShape &s, const T *logits, const std::int32_t *labels,
                                const T *lossMask, T *loss, T *lse) {
  IndexStatus status = checkLabels(s.rows, s.vocab, labels, lossMask);
  if (!status.ok())
    return status;
#pragma omp parallel for schedule(static) if (worthParallel(s.rows * s.vocab))
  for (Index r = 0; r < s.rows; ++r)
    lse[r] = logSumExpRow(s.vocab, logits + r * s.vocab);
  const double total = maskTotal(s.rows, lossMask);
  double sum = 0;
  for (Index r = 0; r < s.rows; ++r) {
    const double m = lossMask ? double(lossMask[r]) : 1.0;
    if (m != 0.0)
      sum += m * (double(lse[r]) - double(logits[r * s.vocab + labels[r]]));
  }
  *loss = total == 0.0 ? T(0) : T(sum / total);
  return status;
}

template <typename T>
IndexStatus crossEntropyBackward(const CrossEntropyShape &s, const T *logits, const std::int32_t *labels,
                                 const T *lossMask, const T *lse, T dloss, T *dlogits) {
  IndexStatus status = checkLabels(s.rows, s.vocab, labels, lossMask);
  if (!status.ok())
    return status;
  const double total = maskTotal(s.rows, lossMask);
  const double unit = total == 0.0 ? 0.0 : double(dloss) / total;
#pragma omp parallel for schedule(static) if (worthParallel(s.rows * s.vocab))
  for (Index r = 0; r < s.rows; ++r) {
    const T w = T(unit * (lossMask ? double(lossMask[r]) : 1.0));
    T *dz = dlogits + r * s.vocab;
    if (w == T(0)) {
      std::memset(dz, 0, std::size_t(s.vocab) * sizeof(T));
      continue;
    }
    softmaxScaledRow(s.vocab, logits + r * s.vocab, lse[r], w, dz);
    dz[labels[r]] -= w;
  }
  return status;
}

#define INSTANTIATE(T)                                                                                                \
  template IndexStatus crossEntropyForward<T>(const CrossEntropyShape &, const T *, const std::int32_t *, const T *, \
                                              T *, T *);                                                              \
  template IndexStatus crossEntropyBackward<T>(const CrossEntropyShape &, const T *, const std::int32_t *,           \
                                               const T *, const T *, T, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
