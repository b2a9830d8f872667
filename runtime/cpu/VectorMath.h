//===- VectorMath.h - exp, tanh, erfc that vectorize -*- C++ -*-===//
//
// Internal to runtime/cpu. libm's expf/tanhf/erff are scalar calls, and without -ffast-math GCC never
// vectorizes them; softmax over a 50k vocabulary, GeLU over the MLP activations and SiLU run one of these per
// element. The float versions below are branch-free polynomials (Cephes' expf and tanhf, Abramowitz & Stegun
// 7.1.26 for erfc) that the compiler vectorizes inside MEGATRON_CPU_CLONES loops. Double, which only the
// finite-difference tests use, calls libm, so the tests compare the float kernels against exact functions.
// test/unit/kernels/VectorMathTest.cpp states the accuracy.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CPU_VECTORMATH_H
#define MEGATRON_RUNTIME_CPU_VECTORMATH_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace megatron::cpu::detail {

/// 2^n for an integer-valued float n in [-126, 127], built from the exponent bits.
inline float pow2i(float n) {
  std::uint32_t bits = std::uint32_t(std::int32_t(n) + 127) << 23;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}

/// e^x within 2 ulp; +inf above 88.72, 0 below −87.33 (no denormal results), NaN stays NaN.
inline float vexp(float x) {
  float xc = x < -87.33654f ? -87.33654f : x; // (ternaries, not fmin/fmax: those do not vectorize)
  xc = xc > 88.72283f ? 88.72283f : xc;
  // n = round(x / ln 2) by the 1.5·2^23 trick (exact for |n| < 2^22), r = x − n·ln 2 in two parts (Cody-Waite).
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // n is in [-126, 128]; 2^n as two factors keeps both exponents in the normal range.
  float half = (n * 0.5f + 12582912.0f) - 12582912.0f; // round(n/2): |half| <= 64
  float res = p * pow2i(half) * pow2i(n - half);
  res = x < -87.33654f ? 0.0f : res;
  res = x > 88.72283f ? std::numeric_limits<float>::infinity() : res;
  return x != x ? x : res;
}
inline double vexp(double x) { return std::exp(x); }

/// tanh(x) within a few ulp: an odd polynomial for |x| < 0.625, else 1 − 2/(e^{2|x|} + 1) with x's sign.
inline float vtanh(float x) {
  float ax = std::fabs(x);
  float s = x * x;
  float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) *
                     s -
                 3.33332819422e-1f) *
                    s * x +
                x;
  float big = 1.0f - 2.0f / (vexp(2.0f * ax) + 1.0f);
  big = std::copysign(big, x);
  return ax < 0.625f ? small : big;
}
inline double vtanh(double x) { return std::tanh(x); }

/// 1 + erf(x), which exact GeLU needs, within 3.5e-7 (about 2 ulp of values near 2): the Maclaurin series of erf for |x| < 0.5 (evaluating
/// A&S's polynomial in float loses ~4e-7 there to cancellation); above, erfc(|x|) by Abramowitz & Stegun 7.1.26
/// (absolute error < 1.5e-7): erfc(|x|) itself for x < 0, where it is small and has no cancellation, and
/// 2 − erfc(x) for x >= 0.
inline float vOnePlusErf(float x) {
  const float s = x * x;
  const float series =
      x * (1.1283791670955126f +
           s * (-0.37612638903183754f +
                s * (0.11283791670955126f +
                     s * (-0.026866170645131252f +
                          s * (0.005223977625442188f + s * (-0.0008548327023450852f + s * 0.00012055332981789664f))))));
  const float z = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  const float poly =
      t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float erfcz = poly * vexp(-s);
  const float tail = x < 0.0f ? erfcz : 2.0f - erfcz;
  return z < 0.5f ? 1.0f + series : tail;
}
inline double vOnePlusErf(double x) { return 1.0 + std::erf(x); }

/// The logistic function 1/(1 + e^{−x}); 0 and 1 at the extremes, never NaN for finite x.
template <typename T> inline T vsigmoid(T x) { return T(1) / (T(1) + vexp(-x)); }

} // namespace megatron::cpu::detail

#endif // MEGATRON_RUNTIME_CPU_VECTORMATH_H
