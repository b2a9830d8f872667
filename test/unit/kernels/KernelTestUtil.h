//===- KernelTestUtil.h - Helpers of the CPU kernel tests -*- C++ -*-===//
//
// Random tensors, float64 central finite differences, and the error measures the tests assert on.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_KERNELS_KERNELTESTUTIL_H
#define MEGATRON_TEST_UNIT_KERNELS_KERNELTESTUTIL_H

#include "runtime/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace megatron::cpu::test {

using Vec = std::vector<double>;
using VecF = std::vector<float>;

/// Uniform values in [lo, hi) from a fixed seed.
inline Vec randomVec(std::size_t n, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Vec v(n);
  for (double &x : v)
    x = dist(gen);
  return v;
}

inline std::vector<std::int32_t> randomIds(std::size_t n, std::uint64_t seed, std::int32_t limit) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<std::int32_t> dist(0, limit - 1);
  std::vector<std::int32_t> v(n);
  for (auto &x : v)
    x = dist(gen);
  return v;
}

inline VecF toFloat(const Vec &v) { return VecF(v.begin(), v.end()); }
inline Vec toDouble(const VecF &v) { return Vec(v.begin(), v.end()); }

inline Vec nanVec(std::size_t n) { return Vec(n, std::numeric_limits<double>::quiet_NaN()); }

inline double dot(const Vec &a, const Vec &b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

inline Vec minus(const Vec &a, const Vec &b) {
  Vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    r[i] = a[i] - b[i];
  return r;
}

/// max_i |a_i − b_i| / max(max_i |b_i|, floor): the error relative to the tensor's scale, so that entries near
/// zero are not held to a relative bound they cannot meet.
inline double scaledError(const Vec &a, const Vec &b, double floor = 1e-12) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = floor;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i]))
      return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / scale;
}

/// Central finite differences of loss() with respect to every element of x (float64, step eps).
template <typename Loss> Vec numericGrad(Vec &x, Loss loss, double eps = 1e-6) {
  Vec g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double plus = loss();
    x[i] = saved - eps;
    const double minusL = loss();
    x[i] = saved;
    g[i] = (plus - minusL) / (2 * eps);
  }
  return g;
}

/// The tolerance of the gradient checks: central differences with eps = 1e-6 in float64 are exact to
/// O(eps²·f''') ≈ 1e-12 plus rounding ≈ 1e-16·|L|/eps ≈ 1e-10 for the O(1)-sized losses used here.
constexpr double kGradTol = 1e-6;
/// float kernels against double kernels on the same inputs.
constexpr double kFloatTol = 1e-5;

#define EXPECT_GRAD_NEAR(analytic, numeric)                                                                          \
  EXPECT_LT(::megatron::cpu::test::scaledError(analytic, numeric), ::megatron::cpu::test::kGradTol)

#define EXPECT_FLOAT_AGREES(f, d)                                                                                    \
  EXPECT_LT(::megatron::cpu::test::scaledError(::megatron::cpu::test::toDouble(f), d), ::megatron::cpu::test::kFloatTol)

/// Bitwise equality of two float buffers.
inline bool sameBits(const VecF &a, const VecF &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Sets the thread count for a scope and restores the previous one.
class ThreadScope {
public:
  explicit ThreadScope(int n) : saved_(numThreads()) { setNumThreads(n); }
  ~ThreadScope() { setNumThreads(saved_); }

private:
  int saved_;
};

} // namespace megatron::cpu::test

#endif // MEGATRON_TEST_UNIT_KERNELS_KERNELTESTUTIL_H
