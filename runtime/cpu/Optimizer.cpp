//===- Optimizer.cpp - AdamW, the global gradient norm, gradient scaling --------===//
//
// AdamW follows torch.optim.AdamW's single-tensor implementation operation by operation (the scalars in double,
// rounded to T where torch rounds them, lerp for the first moment), so that a run can be compared with PyTorch's
// step by step. The gradient norm accumulates squares in double over a static partition of the elements whose
// partial sums are added in partition order: the same result on every run with the same thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cmath>

namespace megatron::cpu {

using namespace detail;

template <typename T>
void adamwStep(Index n, const AdamWConfig &c, bool decay, T *param, const T *grad, T *m, T *v) {
  const double t = double(c.step);
  const double biasCorrection1 = 1.0 - std::pow(c.beta1, t);
  const double biasCorrection2 = 1.0 - std::pow(c.beta2, t);
  const T decayFactor = T(1.0 - c.lr * c.weightDecay);
  const T lerpWeight = T(1.0 - c.beta1);
  const T beta2 = T(c.beta2), oneMinusBeta2 = T(1.0 - c.beta2);
  const T negStepSize = T(-(c.lr / biasCorrection1));
  const T correction2Sqrt = T(std::sqrt(biasCorrection2));
  const T eps = T(c.eps);
  const bool smallWeight = std::fabs(double(lerpWeight)) < 0.5;
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index i = 0; i < n; ++i) {
    T p = param[i];
    const T g = grad[i];
    if (decay)
      p = p * decayFactor;
    // torch.lerp(m, g, w): m + w·(g − m) for |w| < 0.5, else g − (g − m)·(1 − w).
    T mi = smallWeight ? m[i] + lerpWeight * (g - m[i]) : g - (g - m[i]) * (T(1) - lerpWeight);
    T vi = v[i] * beta2;
    vi = vi + oneMinusBeta2 * g * g;
    const T denom = std::sqrt(vi) / correction2Sqrt + eps;
    p = p + negStepSize * mi / denom;
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

template <typename T> double sumOfSquares(Index n, const T *x) {
  constexpr int kMaxParts = 256;
  double partial[kMaxParts] = {};
  const int parts = worthParallel(n) ? std::min(numThreads(), kMaxParts) : 1;
#pragma omp parallel for schedule(static, 1) num_threads(parts) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    const Index begin = n * p / parts, end = n * (p + 1) / parts;
    const T *xs = x + begin;
    partial[p] = laneSum<double>(end - begin, [&](Index i) { return double(xs[i]) * double(xs[i]); });
  }
  double total = 0;
  for (int p = 0; p < parts; ++p)
    total += partial[p];
  return total;
}

template <typename T> double globalNorm(int count, const T *const *tensors, const Index *sizes) {
  double total = 0;
  for (int i = 0; i < count; ++i)
    total += sumOfSquares(sizes[i], tensors[i]);
  return std::sqrt(total);
}

template <typename T> void scaleTensors(int count, T *const *tensors, const Index *sizes, T factor) {
  for (int i = 0; i < count; ++i)
    scale(sizes[i], factor, tensors[i]);
}

#define INSTANTIATE(T)                                                                                                \
  template void adamwStep<T>(Index, const AdamWConfig &, bool, T *, const T *, T *, T *);                            \
  template double sumOfSquares<T>(Index, const T *);                                                                 \
  template double globalNorm<T>(int, const T *const *, const Index *);                                               \
  template void scaleTensors<T>(int, T *const *, const Index *, T);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
