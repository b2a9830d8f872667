//===- Rope.cpp - Rotary position embedding, forward and backward -------------===//
//
// The rotation angles depend on the position and the channel only, so each task takes one position, computes
// its cos/sin once (in double, then rounded: Megatron computes the angles in float32, which at position 4000 is
// off by ~2e-4 rad) and applies them to every sequence and head at that position. The backward is the same
// rotation with the angles negated (the transpose of a rotation).
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cmath>

namespace megatron::cpu {

using namespace detail;

namespace {

constexpr Index kAngleChunk = 64; // channel pairs whose cos/sin are kept on the stack at a time

// Rotates pairs (i, i + half) for i in [0, width) of one head; the pair's cos and sin are cs[i], sn[i].
template <typename T>
MEGATRON_CPU_CLONES void rotatePairs(Index width, Index half, const T *cs, const T *sn, const T *x, T *y) {
  for (Index i = 0; i < width; ++i) {
    T a = x[i], b = x[i + half];
    y[i] = a * cs[i] - b * sn[i];
    y[i + half] = b * cs[i] + a * sn[i];
  }
}

template <typename T> void rope(const RopeShape &s, const T *x, T *y, double direction) {
  assert(s.rotaryDim % 2 == 0 && s.rotaryDim <= s.headDim);
  const Index half = s.rotaryDim / 2, d = s.headDim, rowLen = s.heads * d;
  const Index seqStride = s.seq * rowLen;
#pragma omp parallel for schedule(static) if (worthParallel(s.batch * s.seq * rowLen))
  for (Index p = 0; p < s.seq; ++p) {
    for (Index i0 = 0; i0 < half; i0 += kAngleChunk) {
      const Index width = std::min(kAngleChunk, half - i0);
      T cs[kAngleChunk], sn[kAngleChunk];
      for (Index i = 0; i < width; ++i) {
        double angle = double(p) * std::pow(s.base, -2.0 * double(i0 + i) / double(s.rotaryDim));
        cs[i] = T(std::cos(angle));
        sn[i] = T(direction * std::sin(angle));
      }
      for (Index b = 0; b < s.batch; ++b)
        for (Index h = 0; h < s.heads; ++h) {
          const Index off = b * seqStride + p * rowLen + h * d;
          rotatePairs(width, half, cs, sn, x + off + i0, y + off + i0);
        }
    }
    if (x != y && s.rotaryDim < d)
      for (Index b = 0; b < s.batch; ++b)
        for (Index h = 0; h < s.heads; ++h) {
          const Index off = b * seqStride + p * rowLen + h * d;
          for (Index c = s.rotaryDim; c < d; ++c)
            y[off + c] = x[off + c];
        }
  }
}

} // namespace

template <typename T> void ropeForward(const RopeShape &shape, const T *x, T *y) { rope(shape, x, y, 1.0); }
template <typename T> void ropeBackward(const RopeShape &shape, const T *dy, T *dx) { rope(shape, dy, dx, -1.0); }

#define INSTANTIATE(T)                                                                                                \
  template void ropeForward<T>(const RopeShape &, const T *, T *);                                                   \
  template void ropeBackward<T>(const RopeShape &, const T *, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
