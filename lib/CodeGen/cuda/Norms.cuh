//===- Norms.cuh - LayerNorm and RMSNorm, forward and backward ---------------===//
//
// One block per row: the row's H elements sit in registers (PER per thread), and the statistics are block sums
// in float (double for f64), whatever the storage type: the formulas of runtime/cpu/Norms.cpp, with a tree of
// warp sums instead of the CPU's 16 lanes. The weight and bias gradients are sums over rows; one thread per
// column adds the rows in order into a register and then into the gradient, exactly as the CPU's column blocks
// do, so they are deterministic without atomics or a workspace.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// Loads this thread's elements of a row of H: v[k] = row[threadIdx.x + k·BLOCK], zero past H.
template <int BLOCK, i64 H, int PER, typename X, typename C>
MT_DEVICE void loadRow(const X *row, C (&v)[PER]) {
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    v[k] = i < H ? C(load(row + i)) : C(0);
  }
}

template <typename X, typename W, typename B, typename Y, typename S, i64 H, int BLOCK>
MT_DEVICE void layerNormForward(double eps, const X *x, const W *w, const B *b, Y *y, S *mean, S *rstd) {
  typedef typename Compute<X>::type C;
  constexpr int PER = int((H + BLOCK - 1) / BLOCK);
  const i64 row = blockIdx.x;
  C v[PER];
  loadRow<BLOCK, H>(x + row * H, v);
  C sum = 0;
  for (int k = 0; k < PER; ++k)
    sum += v[k];
  const C mu = blockSum<BLOCK>(sum) / C(H);
  C squares = 0;
  for (int k = 0; k < PER; ++k)
    if (threadIdx.x + i64(k) * BLOCK < H)
      squares += (v[k] - mu) * (v[k] - mu);
  const C rs = C(1) / sqrt(blockSum<BLOCK>(squares) / C(H) + C(eps));
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    if (i < H)
      store(y + row * H + i, (v[k] - mu) * rs * C(load(w + i)) + C(load(b + i)));
  }
  if (threadIdx.x == 0) {
    store(mean + row, mu);
    store(rstd + row, rs);
  }
}

/// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w.
template <typename D, typename X, typename W, typename S, typename G, i64 H, int BLOCK>
MT_DEVICE void layerNormBackwardInput(const D *dy, const X *x, const W *w, const S *mean, const S *rstd, G *dx) {
  typedef typename Compute<X>::type C;
  constexpr int PER = int((H + BLOCK - 1) / BLOCK);
  const i64 row = blockIdx.x;
  const C mu = load(mean + row), rs = load(rstd + row);
  C g[PER], xhat[PER];
  loadRow<BLOCK, H>(x + row * H, xhat);
  loadRow<BLOCK, H>(dy + row * H, g);
  C sumG = 0, sumGx = 0;
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    g[k] *= i < H ? C(load(w + i)) : C(0);
    xhat[k] = (xhat[k] - mu) * rs;
    sumG += g[k];
    sumGx += g[k] * xhat[k];
  }
  const C mg = blockSum<BLOCK>(sumG) / C(H);
  const C mgx = blockSum<BLOCK>(sumGx) / C(H);
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    if (i < H)
      store(dx + row * H + i, rs * (g[k] - mg - xhat[k] * mgx));
  }
}

/// dweight[c] += Σ_r dy[r, c]·x̂[r, c], dbias[c] += Σ_r dy[r, c].
template <typename D, typename X, typename S, typename GW, typename GB, i64 ROWS, i64 H>
MT_DEVICE void layerNormBackwardParams(const D *dy, const X *x, const S *mean, const S *rstd, GW *dweight,
                                       GB *dbias) {
  typedef typename Compute<X>::type C;
  columnSums<2, ROWS, H, C>(
      [&](i64 r, i64 c, C (&acc)[2]) {
        const C g = load(dy + r * H + c);
        acc[0] += g * (C(load(x + r * H + c)) - C(load(mean + r))) * C(load(rstd + r));
        acc[1] += g;
      },
      [&](i64 c, const C (&sum)[2]) {
        store(dweight + c, C(load(dweight + c)) + sum[0]);
        store(dbias + c, C(load(dbias + c)) + sum[1]);
      });
}

template <typename X, typename W, typename Y, typename S, i64 H, int BLOCK>
MT_DEVICE void rmsNormForward(double eps, const X *x, const W *w, Y *y, S *rstd) {
  typedef typename Compute<X>::type C;
  constexpr int PER = int((H + BLOCK - 1) / BLOCK);
  const i64 row = blockIdx.x;
  C v[PER];
  loadRow<BLOCK, H>(x + row * H, v);
  C squares = 0;
  for (int k = 0; k < PER; ++k)
    squares += v[k] * v[k];
  const C rs = C(1) / sqrt(blockSum<BLOCK>(squares) / C(H) + C(eps));
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    if (i < H)
      store(y + row * H + i, v[k] * rs * C(load(w + i)));
  }
  if (threadIdx.x == 0)
    store(rstd + row, rs);
}

/// dx = rstd·(g − x·rstd²·mean(g·x)), g = dy·w.
template <typename D, typename X, typename W, typename S, typename G, i64 H, int BLOCK>
MT_DEVICE void rmsNormBackwardInput(const D *dy, const X *x, const W *w, const S *rstd, G *dx) {
  typedef typename Compute<X>::type C;
  constexpr int PER = int((H + BLOCK - 1) / BLOCK);
  const i64 row = blockIdx.x;
  const C rs = load(rstd + row);
  C g[PER], v[PER];
  loadRow<BLOCK, H>(x + row * H, v);
  loadRow<BLOCK, H>(dy + row * H, g);
  C sumGx = 0;
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    g[k] *= i < H ? C(load(w + i)) : C(0);
    sumGx += g[k] * v[k];
  }
  const C scaled = rs * rs * (blockSum<BLOCK>(sumGx) / C(H));
  for (int k = 0; k < PER; ++k) {
    const i64 i = threadIdx.x + i64(k) * BLOCK;
    if (i < H)
      store(dx + row * H + i, rs * (g[k] - v[k] * scaled));
  }
}

/// dweight[c] += Σ_r dy[r, c]·x[r, c]·rstd[r].
template <typename D, typename X, typename S, typename GW, i64 ROWS, i64 H>
MT_DEVICE void rmsNormBackwardParams(const D *dy, const X *x, const S *rstd, GW *dweight) {
  typedef typename Compute<X>::type C;
  columnSums<1, ROWS, H, C>(
      [&](i64 r, i64 c, C (&acc)[1]) {
        acc[0] += C(load(dy + r * H + c)) * C(load(x + r * H + c)) * C(load(rstd + r));
      },
      [&](i64 c, const C (&sum)[1]) { store(dweight + c, C(load(dweight + c)) + sum[0]); });
}

} // namespace mt
