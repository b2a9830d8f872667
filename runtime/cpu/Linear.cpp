//===- Linear.cpp - mt.linear (and its GeLU fusions), mt.pooler, mt.sum_rows, mt.add_bias ===//
//
// A linear layer is three GEMMs (forward, input gradient, weight gradient) and a column sum (bias gradient). The
// backward pieces are separate entry points because the compiler schedules them separately (the weight gradient
// can wait, the input gradient is on the critical path). The pooler is a linear on token 0 of each sequence
// followed by tanh; the token-0 rows are read in place through the GEMM's leading dimension.
// The GeLU fusions (--mt-fuse-elementwise) call the linear's and the GeLU's kernels in turn, rounding the
// intermediate as the unfused pair stored it.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"
#include "runtime/cpu/VectorMath.h"

#include <cstring>

namespace megatron::cpu {

using namespace detail;

namespace {

// dst[c] += Σ_r src[r·ld + c] for the columns [c0, c0 + width), rows in order.
template <typename T>
MEGATRON_CPU_CLONES void columnSumBlock(Index rows, Index ld, Index c0, Index width, const T *src, T *dst) {
  T acc[kMaxColumnBlock] = {};
  for (Index r = 0; r < rows; ++r) {
    const T *row = src + r * ld + c0;
    for (Index c = 0; c < width; ++c)
      acc[c] += row[c];
  }
  for (Index c = 0; c < width; ++c)
    dst[c0 + c] += acc[c];
}

} // namespace

// dst[c] += Σ_r src[r, c]: parallel over column blocks, so each sum runs over the rows in order.
template <typename T> void sumRows(Index rows, Index cols, const T *src, T *dst) {
  const Index ld = cols;
  const Index width = columnBlockWidth(cols), blocks = ceilDiv(cols, width);
#pragma omp parallel for schedule(static) if (worthParallel(rows * cols))
  for (Index b = 0; b < blocks; ++b) {
    Range c = block(cols, width, b);
    columnSumBlock(rows, ld, c.begin, c.end - c.begin, src, dst);
  }
}

namespace {

// Every row of y[rows, cols] = bias, so that the GEMM adds into it (beta = 1) instead of a second pass.
template <typename T> void broadcastRows(Index rows, Index cols, const T *bias, T *y) {
#pragma omp parallel for schedule(static) if (worthParallel(rows * cols))
  for (Index r = 0; r < rows; ++r)
    std::memcpy(y + r * cols, bias, std::size_t(cols) * sizeof(T));
}

template <typename T> MEGATRON_CPU_CLONES void tanhInPlace(Index n, T *y) {
  for (Index i = 0; i < n; ++i)
    y[i] = vtanh(y[i]);
}

template <typename T> MEGATRON_CPU_CLONES void tanhGrad(Index n, const T *y, const T *dy, T *dz) {
  for (Index i = 0; i < n; ++i)
    dz[i] = dy[i] * (T(1) - y[i] * y[i]);
}

} // namespace

template <typename T> void linearForward(const LinearShape &s, const T *x, const T *weight, const T *bias, T *y) {
  if (bias)
    broadcastRows(s.rows, s.out, bias, y);
  gemm(false, true, s.rows, s.out, s.in, T(1), x, s.in, weight, s.in, bias ? T(1) : T(0), y, s.out);
}

template <typename T>
void linearBackwardInput(const LinearShape &s, const T *dy, const T *weight, T *dx, bool accumulate) {
  gemm(false, false, s.rows, s.in, s.out, T(1), dy, s.out, weight, s.in, accumulate ? T(1) : T(0), dx, s.in);
}

template <typename T>
void linearGeluForward(const LinearShape &s, const T *x, const T *weight, const T *bias, T *pre, T *y,
                       void (*round)(Index, T *)) {
  linearForward(s, x, weight, bias, pre);
  if (round)
    round(s.rows * s.out, pre);
  geluForward(s.rows * s.out, GeluApproximation::Tanh, pre, y);
}

template <typename T>
void linearBackwardInputGelu(const LinearShape &s, const T *dy, const T *weight, const T *pre, T *dpre,
                             void (*round)(Index, T *)) {
  linearBackwardInput(s, dy, weight, dpre);
  if (round)
    round(s.rows * s.in, dpre);
  geluBackward(s.rows * s.in, GeluApproximation::Tanh, pre, dpre, dpre); // dx may alias dy
}

template <typename T> void linearBackwardWeight(const LinearShape &s, const T *dy, const T *x, T *dweight) {
  gemm(true, false, s.out, s.in, s.rows, T(1), dy, s.out, x, s.in, T(1), dweight, s.in);
}

template <typename T> void linearBackwardBias(const LinearShape &s, const T *dy, T *dbias) {
  sumRows(s.rows, s.out, dy, dbias);
}

// Memory-bound like the elementwise kernels: no instruction-set clones.
template <typename T> void addBias(Index rows, Index cols, const T *x, const T *bias, T *y) {
#pragma omp parallel for schedule(static) if (worthParallel(rows * cols))
  for (Index r = 0; r < rows; ++r) {
    const T *xr = x + r * cols;
    T *yr = y + r * cols;
    for (Index c = 0; c < cols; ++c)
      yr[c] = xr[c] + bias[c];
  }
}

template <typename T> void poolerForward(const PoolerShape &s, const T *x, const T *weight, const T *bias, T *y) {
  broadcastRows(s.batch, s.out, bias, y);
  // Row b of the GEMM's A is x[b, 0, :]: leading dimension seq·hidden.
  gemm(false, true, s.batch, s.out, s.hidden, T(1), x, s.seq * s.hidden, weight, s.hidden, T(1), y, s.out);
  tanhInPlace(s.batch * s.out, y);
}

Index poolerBackwardWorkspaceSize(const PoolerShape &s) { return s.batch * s.out; }

template <typename T>
void poolerBackward(const PoolerShape &s, const T *x, const T *weight, const T *y, const T *dy, T *dx, T *dweight,
                    T *dbias, T *workspace) {
  T *dz = workspace; // [batch, out]: the gradient before tanh
  tanhGrad(s.batch * s.out, y, dy, dz);
  fillZero(s.batch * s.seq * s.hidden, dx);
  gemm(false, false, s.batch, s.hidden, s.out, T(1), dz, s.out, weight, s.hidden, T(0), dx, s.seq * s.hidden);
  gemm(true, false, s.out, s.hidden, s.batch, T(1), dz, s.out, x, s.seq * s.hidden, T(1), dweight, s.hidden);
  sumRows(s.batch, s.out, dz, dbias);
}

#define INSTANTIATE(T)                                                                                                \
  template void sumRows<T>(Index, Index, const T *, T *);                                                            \
  template void linearForward<T>(const LinearShape &, const T *, const T *, const T *, T *);                         \
  template void linearBackwardInput<T>(const LinearShape &, const T *, const T *, T *, bool);                        \
  template void linearBackwardWeight<T>(const LinearShape &, const T *, const T *, T *);                             \
  template void linearGeluForward<T>(const LinearShape &, const T *, const T *, const T *, T *, T *,                 \
                                     void (*)(Index, T *));                                                           \
  template void linearBackwardInputGelu<T>(const LinearShape &, const T *, const T *, const T *, T *,               \
                                           void (*)(Index, T *));                                                     \
  template void linearBackwardBias<T>(const LinearShape &, const T *, T *);                                          \
  template void addBias<T>(Index, Index, const T *, const T *, T *);                                                 \
  template void poolerForward<T>(const PoolerShape &, const T *, const T *, const T *, T *);                         \
  template void poolerBackward<T>(const PoolerShape &, const T *, const T *, const T *, const T *, T *, T *, T *,     \
                                  T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
