//===- Optimizer.cuh - AdamW, squared gradient norms, scaling -------------------===//
//
// AdamW as runtime/cpu/Optimizer.cpp and torch.optim.AdamW's single-tensor code, operation by operation: the
// host computes the step's scalars in double exactly as the CPU backend does and passes them, and the kernel
// rounds them to the compute type where torch does. The gradient norm's squares are summed in double: a fixed
// GRID of block partials, then one thread adds them in order to the running total, so the norm is the same on
// every run.
//
//===----------------------------------------------------------------------===//

namespace mt {

// The kernels run over work lists made on the host (codegen::appendAdamwItems, appendSpanItems): one launch for
// every parameter ("multi-tensor apply"), however many tensors the model has. An item is a piece of at most
// kOptimizerItemElements elements of one tensor, WORDS 64-bit words long; block b of the fixed grid takes items
// b, b + gridDim.x, ... in order, its threads striding over the item's elements.

template <typename T> MT_DEVICE T *itemAddress(i64 word) { return reinterpret_cast<T *>(word); }

/// Items of 6 words: param, grad, exp_avg, exp_avg_sq addresses, elements, decay (0 or 1). Per element:
/// p *= decayFactor (when decaying); m = lerp(m, g, lerpWeight); v = β2·v + (1 − β2)·g²;
/// p += negStepSize·m / (sqrt(v)/correction2Sqrt + eps).
template <typename P, typename G, typename M>
MT_DEVICE void adamw(const i64 *items, i64 count, double decayFactor, double lerpWeight, double beta2,
                     double oneMinusBeta2, double negStepSize, double correction2Sqrt, double eps) {
  typedef typename Compute<P>::type C;
  const C df = C(decayFactor), w = C(lerpWeight), b2 = C(beta2), ob2 = C(oneMinusBeta2), step = C(negStepSize),
          c2 = C(correction2Sqrt), e = C(eps);
  // torch.lerp(m, g, w): m + w·(g − m) for |w| < 0.5, else g − (g − m)·(1 − w).
  const bool smallWeight = (w < C(0) ? -w : w) < C(0.5);
  for (i64 b = blockIdx.x; b < count; b += gridDim.x) {
    const i64 *item = items + 6 * b;
    P *param = itemAddress<P>(item[0]);
    const G *grad = itemAddress<const G>(item[1]);
    M *m = itemAddress<M>(item[2]), *v = itemAddress<M>(item[3]);
    const i64 n = item[4];
    const bool decay = item[5] != 0;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
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
}

/// Items of 2 words: address, elements. partial[blockIdx.x] = Σ x² over this block's items, in double (launched
/// with a fixed GRID of blocks, so that the order of the sum is fixed).
template <typename T, int BLOCK> MT_DEVICE void sumOfSquaresPartial(const i64 *items, i64 count, double *partial) {
  double acc = 0;
  for (i64 b = blockIdx.x; b < count; b += gridDim.x) {
    const T *x = itemAddress<const T>(items[2 * b]);
    const i64 n = items[2 * b + 1];
    for (i64 i = threadIdx.x; i < n; i += BLOCK) {
      const double value = load(x + i);
      acc += value * value;
    }
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

/// Items of 2 words: address, elements. x *= factor (clipping, and unscaling fp16's gradients).
template <typename T> MT_DEVICE void scale(const i64 *items, i64 count, float factor) {
  for (i64 b = blockIdx.x; b < count; b += gridDim.x) {
    T *x = itemAddress<T>(items[2 * b]);
    const i64 n = items[2 * b + 1];
    for (i64 i = threadIdx.x; i < n; i += blockDim.x)
      store(x + i, load(x + i) * factor);
  }
}

} // namespace mt
