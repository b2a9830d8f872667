//===- Norms.cpp - LayerNorm and RMSNorm, forward and backward ---------------===//
//
// Rows are independent, so the forward and the input gradient run one row per task. The weight and bias
// gradients sum over rows; to keep that sum in a fixed order without a workspace, they run over blocks of
// columns instead, each block summing its rows in order (x̂ is recomputed from the saved mean and
// rstd). The result is then the same for every thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cmath>

namespace megatron::cpu {

using namespace detail;

namespace {

template <typename T>
MEGATRON_CPU_CLONES void layerNormRow(Index h, T eps, const T *x, const T *w, const T *b, T *y, T *meanOut,
                                      T *rstdOut) {
  const T mean = laneSum<T>(h, [&](Index i) { return x[i]; }) / T(h);
  const T var = laneSum<T>(h, [&](Index i) { return (x[i] - mean) * (x[i] - mean); }) / T(h);
  const T rstd = T(1) / std::sqrt(var + eps);
  for (Index i = 0; i < h; ++i)
    y[i] = (x[i] - mean) * rstd * w[i] + b[i];
  *meanOut = mean;
  *rstdOut = rstd;
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w.
template <typename T>
MEGATRON_CPU_CLONES void layerNormGradRow(Index h, const T *x, const T *w, T mean, T rstd, const T *dy, T *dx) {
  const T mg = laneSum<T>(h, [&](Index i) { return dy[i] * w[i]; }) / T(h);
  const T mgx = laneSum<T>(h, [&](Index i) { return dy[i] * w[i] * (x[i] - mean) * rstd; }) / T(h);
  for (Index i = 0; i < h; ++i)
    dx[i] = rstd * (dy[i] * w[i] - mg - (x[i] - mean) * rstd * mgx);
}

// dweight[c] += Σ_r dy[r, c]·x̂[r, c], dbias[c] += Σ_r dy[r, c] for the columns [c0, c0 + width).
template <typename T>
MEGATRON_CPU_CLONES void layerNormParamGradBlock(Index rows, Index h, Index c0, Index width, const T *x,
                                                 const T *mean, const T *rstd, const T *dy, T *dweight, T *dbias) {
  T accW[kMaxColumnBlock] = {}, accB[kMaxColumnBlock] = {};
  for (Index r = 0; r < rows; ++r) {
    const T *xr = x + r * h + c0, *dyr = dy + r * h + c0;
    const T m = mean[r], s = rstd[r];
    for (Index c = 0; c < width; ++c) {
      accW[c] += dyr[c] * (xr[c] - m) * s;
      accB[c] += dyr[c];
    }
  }
  for (Index c = 0; c < width; ++c) {
    dweight[c0 + c] += accW[c];
    dbias[c0 + c] += accB[c];
  }
}

template <typename T>
MEGATRON_CPU_CLONES void rmsNormRow(Index h, T eps, const T *x, const T *w, T *y, T *rstdOut) {
  const T ms = laneSum<T>(h, [&](Index i) { return x[i] * x[i]; }) / T(h);
  const T rstd = T(1) / std::sqrt(ms + eps);
  for (Index i = 0; i < h; ++i)
    y[i] = x[i] * rstd * w[i];
  *rstdOut = rstd;
}

// dx = rstd·(g − x·rstd²·mean(g·x)), g = dy·w.
template <typename T>
MEGATRON_CPU_CLONES void rmsNormGradRow(Index h, const T *x, const T *w, T rstd, const T *dy, T *dx) {
  const T mgx = laneSum<T>(h, [&](Index i) { return dy[i] * w[i] * x[i]; }) / T(h);
  const T k = rstd * rstd * mgx;
  for (Index i = 0; i < h; ++i)
    dx[i] = rstd * (dy[i] * w[i] - x[i] * k);
}

template <typename T>
MEGATRON_CPU_CLONES void rmsNormParamGradBlock(Index rows, Index h, Index c0, Index width, const T *x,
                                               const T *rstd, const T *dy, T *dweight) {
  T acc[kMaxColumnBlock] = {};
  for (Index r = 0; r < rows; ++r) {
    const T *xr = x + r * h + c0, *dyr = dy + r * h + c0;
    const T s = rstd[r];
    for (Index c = 0; c < width; ++c)
      acc[c] += dyr[c] * xr[c] * s;
  }
  for (Index c = 0; c < width; ++c)
    dweight[c0 + c] += acc[c];
}

} // namespace

template <typename T>
void layerNormForward(const NormShape &shape, double eps, const T *x, const T *weight, const T *bias, T *y, T *mean,
                      T *rstd) {
  const Index h = shape.hidden;
#pragma omp parallel for schedule(static) if (worthParallel(shape.rows * h))
  for (Index r = 0; r < shape.rows; ++r)
    layerNormRow(h, T(eps), x + r * h, weight, bias, y + r * h, mean + r, rstd + r);
}

template <typename T>
void layerNormBackward(const NormShape &shape, const T *x, const T *weight, const T *mean, const T *rstd,
                       const T *dy, T *dx, T *dweight, T *dbias) {
  const Index h = shape.hidden, rows = shape.rows;
  const bool parallel = worthParallel(rows * h);
#pragma omp parallel for schedule(static) if (parallel)
  for (Index r = 0; r < rows; ++r)
    layerNormGradRow(h, x + r * h, weight, mean[r], rstd[r], dy + r * h, dx + r * h);
  const Index width = columnBlockWidth(h), blocks = ceilDiv(h, width);
#pragma omp parallel for schedule(static) if (parallel)
  for (Index b = 0; b < blocks; ++b) {
    Range c = block(h, width, b);
    layerNormParamGradBlock(rows, h, c.begin, c.end - c.begin, x, mean, rstd, dy, dweight, dbias);
  }
}

template <typename T>
void rmsNormForward(const NormShape &shape, double eps, const T *x, const T *weight, T *y, T *rstd) {
  const Index h = shape.hidden;
#pragma omp parallel for schedule(static) if (worthParallel(shape.rows * h))
  for (Index r = 0; r < shape.rows; ++r)
    rmsNormRow(h, T(eps), x + r * h, weight, y + r * h, rstd + r);
}

template <typename T>
void rmsNormBackward(const NormShape &shape, const T *x, const T *weight, const T *rstd, const T *dy, T *dx,
                     T *dweight) {
  const Index h = shape.hidden, rows = shape.rows;
  const bool parallel = worthParallel(rows * h);
#pragma omp parallel for schedule(static) if (parallel)
  for (Index r = 0; r < rows; ++r)
    rmsNormGradRow(h, x + r * h, weight, rstd[r], dy + r * h, dx + r * h);
  const Index width = columnBlockWidth(h), blocks = ceilDiv(h, width);
#pragma omp parallel for schedule(static) if (parallel)
  for (Index b = 0; b < blocks; ++b) {
    Range c = block(h, width, b);
    rmsNormParamGradBlock(rows, h, c.begin, c.end - c.begin, x, rstd, dy, dweight);
  }
}

#define INSTANTIATE(T)                                                                                                \
  template void layerNormForward<T>(const NormShape &, double, const T *, const T *, const T *, T *, T *, T *);     \
  template void layerNormBackward<T>(const NormShape &, const T *, const T *, const T *, const T *, const T *, T *, \
                                     T *, T *);                                                                       \
  template void rmsNormForward<T>(const NormShape &, double, const T *, const T *, T *, T *);                        \
  template void rmsNormBackward<T>(const NormShape &, const T *, const T *, const T *, const T *, T *, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
