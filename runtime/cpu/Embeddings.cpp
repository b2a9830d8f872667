//===- Embeddings.cpp - Table lookups: tokens, absolute positions, T5 buckets --===//
//
// Forward passes gather rows of a table; backward passes scatter-add into the table's gradient. A parallel
// scatter over tokens would race (two tokens with one id) or need atomics, whose order varies; instead each
// thread owns a block of the table's columns (embedding), rows (positions) or heads (T5 bias), and adds its
// tokens in token order. The result is the same for every thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"

#include "megatron/Model/RelativePositionBucket.h"
#include "runtime/cpu/Parallel.h"

#include <cmath>
#include <cstring>

namespace megatron::cpu {

using namespace detail;

namespace {

// The first id outside [0, limit), scanning in order.
IndexStatus checkIds(Index n, const std::int32_t *ids, Index limit) {
  for (Index i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= limit)
      return IndexStatus{i, ids[i], limit};
  return IndexStatus{-1, 0, limit};
}

// Tokens whose id is another rank's row (vocabulary-parallel tables) are skipped.
template <typename T>
MEGATRON_CPU_CLONES void scatterBlock(const EmbeddingShape &s, Index c0, Index width, const std::int32_t *ids,
                                      const T *dout, T *dtable) {
  const Index h = s.hidden;
  for (Index t = 0; t < s.tokens; ++t) {
    const Index row = Index(ids[t]) - s.vocabOffset;
    if (row < 0 || row >= s.vocab)
      continue;
    T *dst = dtable + row * h + c0;
    const T *src = dout + t * h + c0;
    for (Index c = 0; c < width; ++c)
      dst[c] += src[c];
  }
}

template <typename T>
MEGATRON_CPU_CLONES void addRows(Index n, const T *a, const T *b, T *out) {
  for (Index i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

} // namespace

template <typename T>
IndexStatus embeddingForward(const EmbeddingShape &s, const std::int32_t *ids, const T *table, T *out) {
  IndexStatus status = checkIds(s.tokens, ids, s.idLimit());
  if (!status.ok())
    return status;
  const std::size_t rowBytes = std::size_t(s.hidden) * sizeof(T);
#pragma omp parallel for schedule(static) if (worthParallel(s.tokens * s.hidden))
  for (Index t = 0; t < s.tokens; ++t) {
    // Another rank's id: this rank's part of the sum over ranks is zero.
    const Index row = Index(ids[t]) - s.vocabOffset;
    if (row >= 0 && row < s.vocab)
      std::memcpy(out + t * s.hidden, table + row * s.hidden, rowBytes);
    else
      std::memset(out + t * s.hidden, 0, rowBytes);
  }
  return status;
}

template <typename T>
IndexStatus embeddingBackward(const EmbeddingShape &s, const std::int32_t *ids, const T *dout, T *dtable) {
  IndexStatus status = checkIds(s.tokens, ids, s.idLimit());
  if (!status.ok())
    return status;
  const Index width = columnBlockWidth(s.hidden), blocks = ceilDiv(s.hidden, width);
#pragma omp parallel for schedule(static) if (worthParallel(s.tokens * s.hidden))
  for (Index b = 0; b < blocks; ++b) {
    Range c = block(s.hidden, width, b);
    scatterBlock(s, c.begin, c.end - c.begin, ids, dout, dtable);
  }
  return status;
}

template <typename T>
void positionEmbeddingForward(const PositionEmbeddingShape &s, const T *x, const T *table, T *out) {
  assert(s.positionOffset >= 0 && s.positionOffset + s.seq <= s.maxPositions);
  const Index h = s.hidden;
  const T *rows = table + s.positionOffset * h; // the table's rows of this sequence chunk
#pragma omp parallel for schedule(static) if (worthParallel(s.batch * s.seq * h))
  for (Index r = 0; r < s.batch * s.seq; ++r)
    addRows(h, x + r * h, rows + (r % s.seq) * h, out + r * h);
}

template <typename T>
void positionEmbeddingBackward(const PositionEmbeddingShape &s, const T *dout, T *dx, T *dtable) {
  assert(s.positionOffset >= 0 && s.positionOffset + s.seq <= s.maxPositions);
  const Index h = s.hidden, n = s.batch * s.seq * h;
  if (dx && dx != dout)
    copy(n, dout, dx);
  T *rows = dtable + s.positionOffset * h;
  // Position p's row sums the batch in order.
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index p = 0; p < s.seq; ++p)
    for (Index b = 0; b < s.batch; ++b)
      addRows(h, rows + p * h, dout + (b * s.seq + p) * h, rows + p * h);
}

// One definition for both backends (megatron/Model/RelativePositionBucket.h): the CUDA generator bakes the same
// buckets into its kernels.
std::int32_t t5RelativePositionBucket(std::int64_t relative, bool bidirectional, std::int64_t numBuckets,
                                      std::int64_t maxDistance) {
  return megatron::t5RelativePositionBucket(relative, bidirectional, numBuckets, maxDistance);
}

Index relativePositionBiasWorkspaceSize(const RelativePositionBiasShape &s) { return s.querySeq + s.keySeq - 1; }

namespace {

// workspace[k − q + querySeq − 1] = bucket(k − q): one logarithm per distance instead of one per (q, k).
void fillBuckets(const RelativePositionBiasShape &s, std::int32_t *buckets) {
  for (Index d = 0; d < s.querySeq + s.keySeq - 1; ++d)
    buckets[d] = t5RelativePositionBucket(d - (s.querySeq - 1), s.bidirectional, s.numBuckets, s.maxDistance);
}

} // namespace

template <typename T>
void relativePositionBiasForward(const RelativePositionBiasShape &s, const T *table, T *bias,
                                 std::int32_t *workspace) {
  fillBuckets(s, workspace);
  const Index n = s.heads, sq = s.querySeq, sk = s.keySeq;
#pragma omp parallel for schedule(static) if (worthParallel(n * sq * sk))
  for (Index row = 0; row < n * sq; ++row) {
    const Index h = row / sq, q = row % sq;
    const std::int32_t *bk = workspace + (sq - 1 - q); // bk[k] = bucket(k − q)
    T *dst = bias + row * sk;
    for (Index k = 0; k < sk; ++k)
      dst[k] = table[Index(bk[k]) * n + h];
  }
}

template <typename T>
void relativePositionBiasBackward(const RelativePositionBiasShape &s, const T *dbias, T *dtable,
                                  std::int32_t *workspace) {
  fillBuckets(s, workspace);
  const Index n = s.heads, sq = s.querySeq, sk = s.keySeq;
  // One head per task; its buckets' sums stay in a local block of kColumnBlock accumulators (more buckets take
  // more passes), so that dtable's rows, which interleave the heads, are written once per task.
#pragma omp parallel for schedule(static) if (worthParallel(n * sq * sk))
  for (Index h = 0; h < n; ++h) {
    for (Index b0 = 0; b0 < s.numBuckets; b0 += kColumnBlock) {
      T acc[kColumnBlock] = {};
      for (Index q = 0; q < sq; ++q) {
        const std::int32_t *bk = workspace + (sq - 1 - q);
        const T *src = dbias + (h * sq + q) * sk;
        for (Index k = 0; k < sk; ++k) {
          Index slot = bk[k] - b0;
          if (slot >= 0 && slot < kColumnBlock)
            acc[slot] += src[k];
        }
      }
      for (Index b = b0; b < std::min(s.numBuckets, b0 + kColumnBlock); ++b)
        dtable[b * n + h] += acc[b - b0];
    }
  }
}

#define INSTANTIATE(T)                                                                                                \
  template IndexStatus embeddingForward<T>(const EmbeddingShape &, const std::int32_t *, const T *, T *);            \
  template IndexStatus embeddingBackward<T>(const EmbeddingShape &, const std::int32_t *, const T *, T *);           \
  template void positionEmbeddingForward<T>(const PositionEmbeddingShape &, const T *, const T *, T *);              \
  template void positionEmbeddingBackward<T>(const PositionEmbeddingShape &, const T *, T *, T *);                   \
  template void relativePositionBiasForward<T>(const RelativePositionBiasShape &, const T *, T *, std::int32_t *);   \
  template void relativePositionBiasBackward<T>(const RelativePositionBiasShape &, const T *, T *, std::int32_t *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
