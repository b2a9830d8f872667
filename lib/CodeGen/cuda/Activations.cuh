//===- Activations.cuh - GeLU and SwiGLU, forward and backward --------------===//
//
// The formulas of runtime/cpu/Activations.cpp, evaluated with CUDA's accurate tanh, erf and exp (the CPU uses
// polynomial approximations within ~5e-7): the results agree to float rounding, not bit for bit. The backward
// recomputes the activation from the saved input.
//
//===----------------------------------------------------------------------===//

namespace mt {

struct GeluConstants {
  static constexpr double sqrt2OverPi = 0.79788456080286535588; // √(2/π)
  static constexpr double cubic = 0.044715;                      // the tanh form's cubic coefficient
  static constexpr double invSqrt2 = 0.70710678118654752440;     // 1/√2
  static constexpr double invSqrt2Pi = 0.39894228040143267794;   // 1/√(2π)
};

/// gelu with the tanh approximation (TANH) or the exact erf form; dx may alias dy in the backward.
template <typename X, typename Y, i64 N, bool TANH> MT_DEVICE void geluForward(const X *x, Y *y) {
  typedef typename Compute<X>::type C;
  typedef GeluConstants K;
  for (i64 i = globalThread(); i < N; i += gridStride()) {
    C v = load(x + i);
    C out;
    if (TANH)
      out = C(0.5) * v * (C(1) + tanh(C(K::sqrt2OverPi) * (v + C(K::cubic) * v * v * v)));
    else
      out = C(0.5) * v * (C(1) + erf(v * C(K::invSqrt2)));
    store(y + i, out);
  }
}

template <typename D, typename X, typename G, i64 N, bool TANH>
MT_DEVICE void geluBackward(const D *dy, const X *x, G *dx) {
  typedef typename Compute<X>::type C;
  typedef GeluConstants K;
  for (i64 i = globalThread(); i < N; i += gridStride()) {
    C v = load(x + i), g = load(dy + i);
    C grad;
    if (TANH) {
      C k0 = C(K::sqrt2OverPi), k1 = C(K::cubic);
      C t = tanh(k0 * (v + k1 * v * v * v));
      C dudx = k0 * (C(1) + C(3) * k1 * v * v);
      grad = g * (C(0.5) * (C(1) + t) + C(0.5) * v * (C(1) - t * t) * dudx);
    } else {
      C cdf = C(0.5) * (C(1) + erf(v * C(K::invSqrt2)));
      C pdf = C(K::invSqrt2Pi) * exp(C(-0.5) * v * v);
      grad = g * (cdf + v * pdf);
    }
    store(dx + i, grad);
  }
}

template <typename C> MT_DEVICE C sigmoid(C a) { return C(1) / (C(1) + exp(-a)); }

/// [rows, 2F] → [rows, F]: y = silu(x[:, :F])·x[:, F:].
template <typename X, typename Y, i64 ROWS, i64 F> MT_DEVICE void swigluForward(const X *x, Y *y) {
  typedef typename Compute<X>::type C;
  for (i64 i = globalThread(); i < ROWS * F; i += gridStride()) {
    const i64 r = i / F, c = i % F;
    C a = load(x + r * 2 * F + c), b = load(x + r * 2 * F + F + c);
    store(y + i, a * sigmoid(a) * b);
  }
}

template <typename D, typename X, typename G, i64 ROWS, i64 F>
MT_DEVICE void swigluBackward(const D *dy, const X *x, G *dx) {
  typedef typename Compute<X>::type C;
  for (i64 i = globalThread(); i < ROWS * F; i += gridStride()) {
    const i64 r = i / F, c = i % F;
    C a = load(x + r * 2 * F + c), b = load(x + r * 2 * F + F + c), g = load(dy + i);
    C s = sigmoid(a);
    store(dx + r * 2 * F + c, g * b * s * (C(1) + a * (C(1) - s)));
    store(dx + r * 2 * F + F + c, g * a * s);
  }
}

} // namespace mt
