//===- Heads.cpp - Fused QKV/KV projections to attention heads and back ---------===//
//
// Megatron's fused projections interleave the heads group by group ([q heads of group 0, k0, v0, q heads of
// group 1, k1, v1, ...]) so that a tensor-parallel split of the weight's rows keeps whole groups together. The
// attention kernel wants separate contiguous q, k and v, hence these copies; each is one memcpy per head.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cstring>

namespace megatron::cpu {

using namespace detail;

namespace {

// Copies the heads of one token between the fused layout and q/k/v. toFused selects the direction.
template <typename T>
void shuffleToken(const QkvShape &s, Index perGroup, bool withQuery, bool toFused, T *fused, T *q, T *k, T *v) {
  const Index d = s.headDim;
  const std::size_t bytes = std::size_t(d) * sizeof(T);
  for (Index j = 0; j < s.groups; ++j) {
    T *g = fused + j * (perGroup + 2) * d;
    for (Index t = 0; t < perGroup && withQuery; ++t) {
      T *head = q + (j * perGroup + t) * d;
      toFused ? std::memcpy(g + t * d, head, bytes) : std::memcpy(head, g + t * d, bytes);
    }
    T *key = k + j * d, *value = v + j * d;
    toFused ? std::memcpy(g + perGroup * d, key, bytes) : std::memcpy(key, g + perGroup * d, bytes);
    toFused ? std::memcpy(g + (perGroup + 1) * d, value, bytes) : std::memcpy(value, g + (perGroup + 1) * d, bytes);
  }
}

// The shared loop of the four kernels; perGroup = 0 is split_kv.
template <typename T>
void shuffle(const QkvShape &s, bool withQuery, bool toFused, T *fused, T *q, T *k, T *v) {
  assert(!withQuery || s.heads % s.groups == 0);
  const Index perGroup = withQuery ? s.heads / s.groups : 0;
  const Index fusedRow = (perGroup + 2) * s.groups * s.headDim;
  const Index qRow = s.heads * s.headDim, kvRow = s.groups * s.headDim;
#pragma omp parallel for schedule(static) if (worthParallel(s.tokens * fusedRow))
  for (Index t = 0; t < s.tokens; ++t)
    shuffleToken(s, perGroup, withQuery, toFused, fused + t * fusedRow, withQuery ? q + t * qRow : nullptr,
                 k + t * kvRow, v + t * kvRow);
}

} // namespace

template <typename T> void splitQkvForward(const QkvShape &s, const T *x, T *q, T *k, T *v) {
  shuffle(s, true, false, const_cast<T *>(x), q, k, v);
}
template <typename T> void splitQkvBackward(const QkvShape &s, const T *dq, const T *dk, const T *dv, T *dx) {
  shuffle(s, true, true, dx, const_cast<T *>(dq), const_cast<T *>(dk), const_cast<T *>(dv));
}
template <typename T> void splitKvForward(const QkvShape &s, const T *x, T *k, T *v) {
  shuffle<T>(s, false, false, const_cast<T *>(x), nullptr, k, v);
}
template <typename T> void splitKvBackward(const QkvShape &s, const T *dk, const T *dv, T *dx) {
  shuffle<T>(s, false, true, dx, nullptr, const_cast<T *>(dk), const_cast<T *>(dv));
}

#define INSTANTIATE(T)                                                                                                \
  template void splitQkvForward<T>(const QkvShape &, const T *, T *, T *, T *);                                      \
  template void splitQkvBackward<T>(const QkvShape &, const T *, const T *, const T *, T *);                         \
  template void splitKvForward<T>(const QkvShape &, const T *, T *, T *);                                            \
  template void splitKvBackward<T>(const QkvShape &, const T *, const T *, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
