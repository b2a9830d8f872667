//===- Attention.cpp - Core attention, forward and backward -------------------===//
//
// softmax(scale·q·kᵀ + bias + mask)·v, computed per (batch, head) with GEMMs on tiles of at most 128 query
// rows: S = scale·Q·Kᵀ (OpenBLAS), a vectorized row softmax, O = P·V (OpenBLAS). q/k/v rows are read in
// place through the GEMMs' leading dimensions ([batch, seq, heads, dim] needs no transpose). Causal tiles stop
// at the tile's last query, which skips about half of the products.
//
// The forward keeps only the log-sum-exp of each row; the backward recomputes P = exp(S − lse) from q and k
// (flash-attention style) instead of storing the [batch, heads, q, kv] probabilities, and regenerates the dropout
// mask from its Philox stream.
//
// Threads: OpenMP over independent tiles, each thread with its own workspace tiles and single-threaded GEMMs.
// The backward's dk/dv sum over a group's heads and dbias over the batch: one task owns a (batch, group) (or,
// with a bias, a group across the batch) and adds its heads and tiles in a fixed order, so there are no races
// and the result does not depend on the schedule or the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"
#include "runtime/cpu/Philox.h"
#include "runtime/cpu/VectorMath.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace megatron::cpu {

using namespace detail;

namespace {

// Query rows per tile. Causal tiles stop at their last query, so smaller tiles skip more of the masked half;
// other masks prefer larger tiles (fewer, larger GEMMs). Measured on b=8, s=128..512, d=64.
constexpr Index kCausalQueryBlock = 64;
constexpr Index kQueryBlock = 128;
constexpr int kTilesPerThread = 3;

// Where things are in the [batch, seq, heads, dim] tensors.
struct Layout {
  Index batch, sq, sk, heads, groups, dim, perGroup;
  bool causal;
  Index qRow() const { return heads * dim; }   // leading dimension of q, out, dq, dout
  Index kvRow() const { return groups * dim; } // leading dimension of k, v, dk, dv
  Index qOffset(Index b, Index i, Index h) const { return ((b * sq + i) * heads + h) * dim; }
  Index kvOffset(Index b, Index g) const { return b * sk * groups * dim + g * dim; }
  Index rowsPerTile() const { return causal ? kCausalQueryBlock : kQueryBlock; }
  Index queryBlocks() const { return ceilDiv(sq, rowsPerTile()); }
  // Keys a tile of queries [r0, r1) may see: causal tiles end at their last query.
  Index keysOfTile(Index r1) const { return causal ? std::min(sk, r1) : sk; }
  // Keys query i may see, as a prefix of the tile's keys.
  Index visibleKeys(Index i, Index tileKeys) const { return causal ? std::min(tileKeys, i + 1) : tileKeys; }
  // Whether the products are worth a thread team (tiny attentions run faster on one thread).
  bool worthParallel() const { return detail::worthParallel(batch * heads * sq * sk * dim / 8); }
};

Layout layoutOf(const AttentionShape &s, const AttentionConfig &c) {
  assert(s.groups > 0 && s.heads % s.groups == 0);
  assert(c.mask != AttentionMask::Causal || s.querySeq == s.keySeq);
  return Layout{s.batch, s.querySeq, s.keySeq, s.heads, s.groups, s.headDim, s.heads / s.groups,
                c.mask == AttentionMask::Causal};
}

// Adds the bias and masks one row of scores in place: the first `visible` entries are candidates (causal), of
// those the ones with keep[j] == 0 (padding) become −inf, the rest of the row [visible, len) becomes 0.
template <typename T>
inline void biasAndMask(Index len, Index visible, const T *bias, const std::int32_t *keep, T *s) {
  if (bias)
    for (Index j = 0; j < visible; ++j)
      s[j] += bias[j];
  if (keep)
    for (Index j = 0; j < visible; ++j)
      s[j] = keep[j] != 0 ? s[j] : -std::numeric_limits<T>::infinity();
  for (Index j = visible; j < len; ++j)
    s[j] = T(0);
}

// Forward row: scores -> probabilities in place; returns the row's log-sum-exp (−inf when no key is visible,
// and then the row is all zero).
template <typename T>
MEGATRON_CPU_CLONES T softmaxRow(Index len, Index visible, const T *bias, const std::int32_t *keep, T *s) {
  biasAndMask(len, visible, bias, keep, s);
  const T max = laneMax(visible, s);
  if (max == -std::numeric_limits<T>::infinity()) {
    for (Index j = 0; j < visible; ++j)
      s[j] = T(0);
    return max;
  }
  for (Index j = 0; j < visible; ++j)
    s[j] = vexp(s[j] - max);
  const T sum = laneSum<T>(visible, [&](Index j) { return s[j]; });
  const T inv = T(1) / sum;
  for (Index j = 0; j < visible; ++j)
    s[j] *= inv;
  return max + std::log(sum);
}

// Backward row: scores -> probabilities exp(s − lse) in place.
template <typename T>
MEGATRON_CPU_CLONES void probabilitiesRow(Index len, Index visible, const T *bias, const std::int32_t *keep, T lse,
                                          T *s) {
  if (lse == -std::numeric_limits<T>::infinity()) {
    for (Index j = 0; j < len; ++j)
      s[j] = T(0);
    return;
  }
  biasAndMask(len, visible, bias, keep, s);
  double sum = 0.0;
  for (Index j = 0; j < visible; ++j) {
    s[j] = vexp(s[j] - lse);
    sum += s[j];
  }
  // The saved lse is rounded to T, and exp is vectorised: the recomputed row sums to 1 + δ. Left as is, that
  // common factor survives into dS = P·(dP − rowsum(P·dP)) as −δ·rowsum(P·dP)·P and leaks into dq, which is
  // large next to a small true dq (found by test/parity on T5's cross-attention). Renormalising removes it.
  if (sum > 0.0) {
    const T inverse = T(1.0 / sum);
    for (Index j = 0; j < visible; ++j)
      s[j] *= inverse;
  }
}

template <typename T>
MEGATRON_CPU_CLONES void maskChunk(Index n, const std::uint32_t *bits, std::uint64_t threshold, T scale,
                                   const T *src, T *dst) {
  for (Index j = 0; j < n; ++j)
    dst[j] = std::uint64_t(bits[j]) >= threshold ? src[j] * scale : T(0);
}

// dst[j] = src[j]·keep_j/(1 − rate) for the row whose first element has (local) index `start`; d.shard maps it
// to the unsharded op's index when the heads are sharded.
template <typename T>
void dropoutRow(const DropoutConfig &d, std::uint64_t start, Index len, const T *src, T *dst) {
  const std::uint64_t threshold = keepThreshold(d.rate);
  const T scale = T(keepScale(d.rate));
  std::uint32_t bits[kRandomChunk];
  for (Index j0 = 0; j0 < len; j0 += kRandomChunk) {
    const Index n = std::min(kRandomChunk, len - j0);
    dropoutBits(d, start + std::uint64_t(j0), n, bits);
    maskChunk(n, bits, threshold, scale, src + j0, dst + j0);
  }
}

// dS = P ⊙ (dP − Σ_j P·dP) in place of P (the softmax backward), where dP = ∂L/∂P is dO·Vᵀ already passed back
// through the dropout mask.
template <typename T> MEGATRON_CPU_CLONES void softmaxGradRow(Index len, const T *dp, T *p) {
  // dS = P·(dP − D) cancels where dP is close to its P-weighted mean D; D is accumulated in double so that its
  // rounding does not dominate small query gradients (test/parity, T5's cross-attention).
  double sum = 0.0;
  for (Index j = 0; j < len; ++j)
    sum += double(p[j]) * double(dp[j]);
  const T dot = T(sum);
  for (Index j = 0; j < len; ++j)
    p[j] = p[j] * (dp[j] - dot);
}

template <typename T> MEGATRON_CPU_CLONES void addRow(Index n, const T *src, T *dst) {
  for (Index j = 0; j < n; ++j)
    dst[j] += src[j];
}

// Threads the workspace can hold, at most numThreads().
int usableThreads(const AttentionShape &s, Index workspaceSize) {
  const Index perThread = attentionWorkspaceSize(s, 1);
  const Index fit = perThread > 0 ? workspaceSize / perThread : 1;
  assert(fit >= 1 && "attention workspace smaller than attentionWorkspaceSize(shape, 1)");
  return int(std::max<Index>(1, std::min<Index>(fit, numThreads())));
}

} // namespace

Index attentionWorkspaceSize(const AttentionShape &s, int threads) {
  return Index(std::max(threads, 1)) * kTilesPerThread * std::min(kQueryBlock, s.querySeq) * s.keySeq;
}

template <typename T>
void attentionForward(const AttentionShape &shape, const AttentionConfig &config, const T *q, const T *k, const T *v,
                      const std::int32_t *padMask, const T *bias, T *out, T *lse, T *workspace,
                      Index workspaceSize) {
  const Layout L = layoutOf(shape, config);
  const bool padding = config.mask == AttentionMask::Padding;
  assert(!padding || padMask);
  const bool dropout = config.dropout.rate > 0.0;
  const Index tileSize = std::min(L.rowsPerTile(), L.sq) * L.sk;
  const Index blocks = L.queryBlocks(), tasks = L.batch * L.heads * blocks;
  const int threads = usableThreads(shape, workspaceSize);
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (L.worthParallel())
  for (Index task = 0; task < tasks; ++task) {
    const Index b = task / (L.heads * blocks), h = task / blocks % L.heads, qb = task % blocks;
    const Index g = h / L.perGroup;
    const Index r0 = qb * L.rowsPerTile(), r1 = std::min(L.sq, r0 + L.rowsPerTile()), rows = r1 - r0;
    const Index keys = L.keysOfTile(r1);
    T *tile = workspace + Index(omp_get_thread_num()) * kTilesPerThread * tileSize;
    gemm(false, true, rows, keys, L.dim, T(config.softmaxScale), q + L.qOffset(b, r0, h), L.qRow(),
         k + L.kvOffset(b, g), L.kvRow(), T(0), tile, keys);
    for (Index r = 0; r < rows; ++r) {
      const Index i = r0 + r;
      T *row = tile + r * keys;
      lse[(b * L.heads + h) * L.sq + i] =
          softmaxRow(keys, L.visibleKeys(i, keys), bias ? bias + (h * L.sq + i) * L.sk : nullptr,
                     padding ? padMask + b * L.sk : nullptr, row);
      if (dropout)
        dropoutRow(config.dropout, std::uint64_t(((b * L.heads + h) * L.sq + i) * L.sk), keys, row, row);
    }
    gemm(false, false, rows, L.dim, keys, T(1), tile, keys, v + L.kvOffset(b, g), L.kvRow(), T(0),
         out + L.qOffset(b, r0, h), L.qRow());
  }
}

template <typename T>
void attentionBackward(const AttentionShape &shape, const AttentionConfig &config, const T *q, const T *k,
                       const T *v, const std::int32_t *padMask, const T *bias, const T *lse, const T *dout, T *dq,
                       T *dk, T *dv, T *dbias, T *workspace, Index workspaceSize) {
  const Layout L = layoutOf(shape, config);
  const bool padding = config.mask == AttentionMask::Padding;
  assert(!padding || padMask);
  const bool dropout = config.dropout.rate > 0.0;
  const T scale = T(config.softmaxScale);
  const Index tileSize = std::min(L.rowsPerTile(), L.sq) * L.sk;
  // With a bias gradient, a task owns a group across the whole batch (dbias sums the batch in order).
  const bool taskPerGroup = dbias != nullptr && bias != nullptr;
  const Index tasks = taskPerGroup ? L.groups : L.batch * L.groups;
  const int threads = usableThreads(shape, workspaceSize);
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (L.worthParallel())
  for (Index task = 0; task < tasks; ++task) {
    const Index g = task % L.groups;
    const Index bBegin = taskPerGroup ? 0 : task / L.groups, bEnd = taskPerGroup ? L.batch : bBegin + 1;
    T *P = workspace + Index(omp_get_thread_num()) * kTilesPerThread * tileSize; // probabilities, then dS
    T *dP = P + tileSize;                                                            // gradient of P
    T *dropped = dP + tileSize;                                                      // P after dropout
    if (taskPerGroup)
      fillZero(L.perGroup * L.sq * L.sk, dbias + g * L.perGroup * L.sq * L.sk);
    for (Index b = bBegin; b < bEnd; ++b) {
      T *dkg = dk + L.kvOffset(b, g), *dvg = dv + L.kvOffset(b, g);
      const T *kg = k + L.kvOffset(b, g), *vg = v + L.kvOffset(b, g);
      for (Index j = 0; j < L.sk; ++j) {
        std::memset(dkg + j * L.kvRow(), 0, std::size_t(L.dim) * sizeof(T));
        std::memset(dvg + j * L.kvRow(), 0, std::size_t(L.dim) * sizeof(T));
      }
      for (Index h = g * L.perGroup; h < (g + 1) * L.perGroup; ++h) {
        for (Index qb = 0; qb < L.queryBlocks(); ++qb) {
          const Index r0 = qb * L.rowsPerTile(), r1 = std::min(L.sq, r0 + L.rowsPerTile()), rows = r1 - r0;
          const Index keys = L.keysOfTile(r1);
          const T *qBlock = q + L.qOffset(b, r0, h), *doBlock = dout + L.qOffset(b, r0, h);
          // P = exp(scale·Q·Kᵀ + bias + mask − lse), as in the forward.
          gemm(false, true, rows, keys, L.dim, scale, qBlock, L.qRow(), kg, L.kvRow(), T(0), P, keys);
          for (Index r = 0; r < rows; ++r) {
            const Index i = r0 + r;
            probabilitiesRow(keys, L.visibleKeys(i, keys), bias ? bias + (h * L.sq + i) * L.sk : nullptr,
                             padding ? padMask + b * L.sk : nullptr, lse[(b * L.heads + h) * L.sq + i],
                             P + r * keys);
            if (dropout)
              dropoutRow(config.dropout, std::uint64_t(((b * L.heads + h) * L.sq + i) * L.sk), keys, P + r * keys,
                         dropped + r * keys);
          }
          // dV += dropout(P)ᵀ·dO.
          gemm(true, false, keys, L.dim, rows, T(1), dropout ? dropped : P, keys, doBlock, L.qRow(), T(1), dvg,
               L.kvRow());
          // dP = mask ⊙ (dO·Vᵀ)/(1 − rate); then dS = P ⊙ (dP − rowsum(P ⊙ dP)) in place of P.
          gemm(false, true, rows, keys, L.dim, T(1), doBlock, L.qRow(), vg, L.kvRow(), T(0), dP, keys);
          for (Index r = 0; r < rows; ++r) {
            const Index i = r0 + r;
            if (dropout)
              dropoutRow(config.dropout, std::uint64_t(((b * L.heads + h) * L.sq + i) * L.sk), keys, dP + r * keys,
                         dP + r * keys);
            softmaxGradRow(keys, dP + r * keys, P + r * keys);
            if (taskPerGroup)
              addRow(keys, P + r * keys, dbias + (h * L.sq + i) * L.sk);
          }
          // dQ = scale·dS·K (this tile's rows, written), dK += scale·dSᵀ·Q.
          gemm(false, false, rows, L.dim, keys, scale, P, keys, kg, L.kvRow(), T(0), dq + L.qOffset(b, r0, h),
               L.qRow());
          gemm(true, false, keys, L.dim, rows, scale, P, keys, qBlock, L.qRow(), T(1), dkg, L.kvRow());
        }
      }
    }
  }
}

#define INSTANTIATE(T)                                                                                                \
  template void attentionForward<T>(const AttentionShape &, const AttentionConfig &, const T *, const T *,           \
                                    const T *, const std::int32_t *, const T *, T *, T *, T *, Index);               \
  template void attentionBackward<T>(const AttentionShape &, const AttentionConfig &, const T *, const T *,          \
                                     const T *, const std::int32_t *, const T *, const T *, const T *, T *, T *,     \
                                     T *, T *, T *, Index);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
