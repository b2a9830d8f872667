//===- Optimizer.cuh - AdamW, squared gradient norms, scaling -------------------===//
//
// AdamW as runtime/cpu/Optimizer.cpp and torch.optim.AdamW's single-tensor code, operation by operation: the
// host computes the step's scalars in double exactly as the CPU backend does and passes them, and the kernel
// rounds them to the compute type where torch does. The gradient norm's squares are summed in double: a fixed
// GRID of block partials, then one thread adds them in order to the running total (tensors in list order), so
// the norm is the same on every run.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// p *= decayFactor (when decaying); m = lerp(m, g, lerpWeight); v = β2·v + (1 − β2)·g²;
/// p += negStepSize·m / (sqrt(v)/correction2Sqrt + eps).
template <typename P, typename G, typename M>
MT_DEVICE void adamw(P *param, const G *grad, M *m, M *v, i64 n, double decayFactor, double lerpWeight,
                     double beta2, double oneMinusBeta2, double negStepSize, double correction2Sqrt, double eps,
                     int decay) {
  typedef typename Compute<P>::type C;
  const C df = C(decayFactor), w = C(lerpWeight), b2 = C(beta2), ob2 = C(oneMinusBeta2), step = C(negStepSize),
          c2 = C(correction2Sqrt), e = C(eps);
  // torch.lerp(m, g, w): m + w·(g − m) for |w| < 0.5, else g − (g − m)·(1 − w).
  const bool smallWeight = (w < C(0) ? -w : w) < C(0.5);
  for (i64 i = globalThread(); i < n; i += gridStride()) {
    C p = load(param + i);
    const C g = load(grad + i), mi0 = load(m + i);
    if (decay)
      p = p * df;
    const C mi = smallWeight ? mi0 + w * (g - mi0) : g - (g - mi0) * (C(1) - w);
    C vi = C(load(v + i)) * b2;
    vi = vi + ob2 * g * g;
    const C denom = sqrt(vi) / c2 + e;
    p = p + step * mi / denom;
    store(param + i, p);
    store(m + i, mi);
    store(v + i, vi);
  }
}

/// partial[blockIdx.x] = Σ x² over this block's grid-stride share of n elements (launched with GRID blocks).
template <typename T, int BLOCK> MT_DEVICE void sumOfSquaresPartial(const T *x, i64 n, double *partial) {
  double acc = 0;
  for (i64 i = globalThread(); i < n; i += gridStride()) {
    const double value = load(x + i);
    acc += value * value;
  }
  acc = blockSum<BLOCK>(acc);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = acc;
}

/// *total += Σ partial[0..GRID), in order; one thread.
template <int GRID> MT_DEVICE void sumOfSquaresFinish(const double *partial, double *total) {
  double sum = 0;
  for (int b = 0; b < GRID; ++b)
    sum += partial[b];
  *total += sum;
}

} // namespace mt
