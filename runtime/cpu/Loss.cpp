//===- Loss.cpp - Masked cross-entropy, forward and backward ------------------===//
//
// The logits are the largest activation of a language model ([tokens, vocab]); the forward reads each row once
// from memory (blockwise max and Σ exp), the backward once, with the vectorized exp. Rows run in parallel; the loss
// itself sums the rows' terms in row order, in double, so it does not depend on the thread count.
//
// Vocabulary-parallel logits (each tensor-parallel rank holds a slice of the columns) need the row max and the
// row sum over all ranks: the forward is then three phases that the runtime joins with all-reduces. The backward
// needs only the saved lse, so it is the same kernel with the label's column shifted into the slice.
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

// Σ_j exp(z_j − max) over one block of at most kLseBlock logits. Inlined into each caller's clone.
template <typename T> __attribute__((always_inline)) inline T blockSumExp(Index len, const T *z, T max) {
  T e[kLseBlock]; // exp first, then a plain lane sum: both loops vectorize
  for (Index j = 0; j < len; ++j)
    e[j] = vexp(z[j] - max);
  return laneSum<T>(len, [&](Index j) { return e[j]; });
}

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
    sum += blockSumExp(len, zb, max);
  }
  return max + std::log(sum);
}

// The vocabulary-parallel forward's two passes over a row: the max, then Σ exp(z − the global max).
template <typename T> MEGATRON_CPU_CLONES T rowMaximum(Index n, const T *z) { return laneMax(n, z); }

template <typename T> MEGATRON_CPU_CLONES T sumExpRow(Index n, const T *z, T max) {
  T sum = 0;
  for (Index b0 = 0; b0 < n; b0 += kLseBlock)
    sum += blockSumExp(std::min(kLseBlock, n - b0), z + b0, max);
  return sum;
}

// dz_j = w·exp(z_j − lse).
template <typename T> MEGATRON_CPU_CLONES void softmaxScaledRow(Index n, const T *z, T lse, T w, T *dz) {
  for (Index j = 0; j < n; ++j)
    dz[j] = w * vexp(z[j] - lse);
}

// Whether row r's label is read: where the mask is non-zero, or everywhere without a mask.
template <typename T> bool labelRead(const T *mask, Index r) { return !mask || mask[r] != T(0); }

// The first row whose label is read and lies outside [0, limit) (the full vocabulary).
template <typename T>
IndexStatus checkLabels(Index rows, Index limit, const std::int32_t *labels, const T *mask) {
  for (Index r = 0; r < rows; ++r)
    if (labelRead(mask, r) && (labels[r] < 0 || labels[r] >= limit))
      return IndexStatus{r, labels[r], limit};
  return IndexStatus{-1, 0, limit};
}

// The column of row r's label in this shard of the vocabulary, or −1 when another rank holds it.
inline Index localColumn(const CrossEntropyShape &s, const std::int32_t *labels, Index r) {
  const Index column = Index(labels[r]) - s.vocabOffset;
  return column >= 0 && column < s.vocab ? column : -1;
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

// Σ_r mask_r·(lse_r − target(r)) / Σ mask, in double and in row order; target(r) is only asked for rows whose
// label is read.
template <typename T, typename Target> T meanLoss(Index rows, const T *mask, const T *lse, Target target) {
  const double total = maskTotal(rows, mask);
  double sum = 0;
  for (Index r = 0; r < rows; ++r) {
    const double m = mask ? double(mask[r]) : 1.0;
    if (m != 0.0)
      sum += m * (double(lse[r]) - double(target(r)));
  }
  return total == 0.0 ? T(0) : T(sum / total);
}

} // namespace

template <typename T>
IndexStatus crossEntropyForward(const CrossEntropyShape &s, const T *logits, const std::int32_t *labels,
                                const T *lossMask, T *loss, T *lse) {
  assert(s.vocabOffset == 0 && s.labelLimit() == s.vocab && "vocabulary-parallel logits need the phases");
  IndexStatus status = checkLabels(s.rows, s.vocab, labels, lossMask);
  if (!status.ok())
    return status;
#pragma omp parallel for schedule(static) if (worthParallel(s.rows * s.vocab))
  for (Index r = 0; r < s.rows; ++r)
    lse[r] = logSumExpRow(s.vocab, logits + r * s.vocab);
  *loss = meanLoss(s.rows, lossMask, lse, [&](Index r) { return logits[r * s.vocab + labels[r]]; });
  return status;
}

template <typename T> void crossEntropyRowMax(const CrossEntropyShape &s, const T *logits, T *rowMax) {
#pragma omp parallel for schedule(static) if (worthParallel(s.rows * s.vocab))
  for (Index r = 0; r < s.rows; ++r)
    rowMax[r] = rowMaximum(s.vocab, logits + r * s.vocab);
}

template <typename T>
IndexStatus crossEntropyPartialSums(const CrossEntropyShape &s, const T *logits, const std::int32_t *labels,
                                    const T *lossMask, const T *rowMax, T *partial) {
  IndexStatus status = checkLabels(s.rows, s.labelLimit(), labels, lossMask);
  if (!status.ok())
    return status;
#pragma omp parallel for schedule(static) if (worthParallel(s.rows * s.vocab))
  for (Index r = 0; r < s.rows; ++r) {
    const T *z = logits + r * s.vocab;
    const Index column = labelRead(lossMask, r) ? localColumn(s, labels, r) : -1;
    partial[2 * r] = sumExpRow(s.vocab, z, rowMax[r]);
    partial[2 * r + 1] = column >= 0 ? z[column] : T(0);
  }
  return status;
}

template <typename T>
void crossEntropyFinish(Index rows, const T *rowMax, const T *partial, const T *lossMask, T *loss, T *lse) {
  for (Index r = 0; r < rows; ++r)
    lse[r] = rowMax[r] + std::log(partial[2 * r]);
  *loss = meanLoss(rows, lossMask, lse, [&](Index r) { return partial[2 * r + 1]; });
}

template <typename T>
IndexStatus crossEntropyBackward(const CrossEntropyShape &s, const T *logits, const std::int32_t *labels,
                                 const T *lossMask, const T *lse, T dloss, T *dlogits) {
  IndexStatus status = checkLabels(s.rows, s.labelLimit(), labels, lossMask);
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
    if (const Index column = localColumn(s, labels, r); column >= 0)
      dz[column] -= w;
  }
  return status;
}

#define INSTANTIATE(T)                                                                                                \
  template IndexStatus crossEntropyForward<T>(const CrossEntropyShape &, const T *, const std::int32_t *, const T *,  \
                                              T *, T *);                                                              \
  template IndexStatus crossEntropyBackward<T>(const CrossEntropyShape &, const T *, const std::int32_t *,            \
                                               const T *, const T *, T, T *);                                         \
  template void crossEntropyRowMax<T>(const CrossEntropyShape &, const T *, T *);                                     \
  template IndexStatus crossEntropyPartialSums<T>(const CrossEntropyShape &, const T *, const std::int32_t *,         \
                                                  const T *, const T *, T *);                                         \
  template void crossEntropyFinish<T>(Index, const T *, const T *, const T *, T *, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
