//===- Activations.cpp - GeLU and SwiGLU, forward and backward ------------------===//
//
// Both run one transcendental per element over the MLP's widest activations, so the loops use the vectorizable
// functions of VectorMath.h inside instruction-set clones. The backward recomputes the activation from the saved
// input instead of storing it.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"
#include "runtime/cpu/VectorMath.h"

namespace megatron::cpu {

using namespace detail;

namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;    // √(2/π)
constexpr double kGeluCubic = 0.044715;                     // tanh approximation's cubic coefficient
constexpr double kInvSqrt2 = 0.70710678118654752440;        // 1/√2
constexpr double kInvSqrt2Pi = 0.39894228040143267794;      // 1/√(2π)
constexpr Index kChunk = 4096;                              // elements per thread task

template <typename T> MEGATRON_CPU_CLONES void geluTanhFwd(Index n, const T *x, T *y) {
  const T k0 = T(kSqrt2OverPi), k1 = T(kGeluCubic);
  for (Index i = 0; i < n; ++i) {
    T v = x[i];
    T t = vtanh(k0 * (v + k1 * v * v * v));
    y[i] = T(0.5) * v * (T(1) + t);
  }
}

template <typename T> MEGATRON_CPU_CLONES void geluTanhBwd(Index n, const T *x, const T *dy, T *dx) {
  const T k0 = T(kSqrt2OverPi), k1 = T(kGeluCubic);
  for (Index i = 0; i < n; ++i) {
    T v = x[i];
    T t = vtanh(k0 * (v + k1 * v * v * v));
    T dudx = k0 * (T(1) + T(3) * k1 * v * v);
    dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * dudx);
  }
}

template <typename T> MEGATRON_CPU_CLONES void geluErfFwd(Index n, const T *x, T *y) {
  for (Index i = 0; i < n; ++i) {
    T v = x[i];
    y[i] = T(0.5) * v * vOnePlusErf(v * T(kInvSqrt2));
  }
}

template <typename T> MEGATRON_CPU_CLONES void geluErfBwd(Index n, const T *x, const T *dy, T *dx) {
  for (Index i = 0; i < n; ++i) {
    T v = x[i];
    T cdf = T(0.5) * vOnePlusErf(v * T(kInvSqrt2));
    T pdf = T(kInvSqrt2Pi) * vexp(T(-0.5) * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

template <typename T> MEGATRON_CPU_CLONES void swigluFwdRow(Index f, const T *x, T *y) {
  for (Index i = 0; i < f; ++i) {
    T a = x[i];
    y[i] = a * vsigmoid(a) * x[f + i];
  }
}

template <typename T> MEGATRON_CPU_CLONES void swigluBwdRow(Index f, const T *x, const T *dy, T *dx) {
  for (Index i = 0; i < f; ++i) {
    T a = x[i], b = x[f + i], g = dy[i];
    T s = vsigmoid(a);
    T silu = a * s;
    dx[i] = g * b * s * (T(1) + a * (T(1) - s));
    dx[f + i] = g * silu;
  }
}

} // namespace

template <typename T> void geluForward(Index n, GeluApproximation approx, const T *x, T *y) {
  const Index chunks = ceilDiv(n, kChunk);
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index c = 0; c < chunks; ++c) {
    Range r = block(n, kChunk, c);
    if (approx == GeluApproximation::Tanh)
      geluTanhFwd(r.end - r.begin, x + r.begin, y + r.begin);
    else
      geluErfFwd(r.end - r.begin, x + r.begin, y + r.begin);
  }
}

template <typename T> void geluBackward(Index n, GeluApproximation approx, const T *x, const T *dy, T *dx) {
  const Index chunks = ceilDiv(n, kChunk);
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index c = 0; c < chunks; ++c) {
    Range r = block(n, kChunk, c);
    if (approx == GeluApproximation::Tanh)
      geluTanhBwd(r.end - r.begin, x + r.begin, dy + r.begin, dx + r.begin);
    else
      geluErfBwd(r.end - r.begin, x + r.begin, dy + r.begin, dx + r.begin);
  }
}

template <typename T> void swigluForward(const SwigluShape &shape, const T *x, T *y) {
  const Index f = shape.ffn;
#pragma omp parallel for schedule(static) if (worthParallel(shape.rows * f))
  for (Index r = 0; r < shape.rows; ++r)
    swigluFwdRow(f, x + r * 2 * f, y + r * f);
}

template <typename T> void swigluBackward(const SwigluShape &shape, const T *x, const T *dy, T *dx) {
  const Index f = shape.ffn;
#pragma omp parallel for schedule(static) if (worthParallel(shape.rows * f))
  for (Index r = 0; r < shape.rows; ++r)
    swigluBwdRow(f, x + r * 2 * f, dy + r * f, dx + r * 2 * f);
}

#define INSTANTIATE(T)                                                                                                \
  template void geluForward<T>(Index, GeluApproximation, const T *, T *);                                            \
  template void geluBackward<T>(Index, GeluApproximation, const T *, const T *, T *);                                \
  template void swigluForward<T>(const SwigluShape &, const T *, T *);                                               \
  template void swigluBackward<T>(const SwigluShape &, const T *, const T *, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
