//===- Pooler.cuh - BERT's pooler, forward and backward ---------------------===//
//
// y[b, o] = tanh(x[b, 0, :] · W[o, :] + bias[o]) (runtime/cpu/Heads.cpp). The pooler is one [batch, hidden] by
// [hidden, out] product per step, negligible beside the model's GEMMs, so it is generated whole instead of
// being a cuBLASLt call followed by a tanh kernel: one thread per output element, sums in f32 in index order.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// Grid-stride over BATCH·OUT.
template <typename X, typename W, typename BI, typename Y, i64 BATCH, i64 SEQ, i64 HIDDEN, i64 OUT>
MT_DEVICE void poolerForward(const X *x, const W *weight, const BI *bias, Y *y) {
  for (i64 e = globalThread(); e < BATCH * OUT; e += gridStride()) {
    const i64 b = e / OUT, o = e % OUT;
    float z = load(bias + o);
    for (i64 i = 0; i < HIDDEN; ++i)
      z += float(load(x + b * SEQ * HIDDEN + i)) * float(load(weight + o * HIDDEN + i));
    store(y + e, tanhf(z));
  }
}

/// dz[b, o] = dy[b, o] · (1 − y[b, o]²), the gradient through tanh.
template <typename DY, typename Y> MT_DEVICE float poolerDz(const DY *dy, const Y *y, i64 e) {
  const float t = load(y + e);
  return float(load(dy + e)) * (1.0f - t * t);
}

/// dx[b, s, i] = Σ_o dz[b, o] · W[o, i] for s = 0, else 0 (overwrite). Grid-stride over BATCH·SEQ·HIDDEN.
template <typename DY, typename Y, typename W, typename DX, i64 BATCH, i64 SEQ, i64 HIDDEN, i64 OUT>
MT_DEVICE void poolerBackwardInput(const DY *dy, const Y *y, const W *weight, DX *dx) {
  for (i64 e = globalThread(); e < BATCH * SEQ * HIDDEN; e += gridStride()) {
    const i64 b = e / (SEQ * HIDDEN), s = e / HIDDEN % SEQ, i = e % HIDDEN;
    float acc = 0.0f;
    for (i64 o = 0; s == 0 && o < OUT; ++o)
      acc += poolerDz(dy, y, b * OUT + o) * float(load(weight + o * HIDDEN + i));
    store(dx + e, acc);
  }
}

/// dW[o, i] += Σ_b dz[b, o] · x[b, 0, i] and, for i = 0, dbias[o] += Σ_b dz[b, o] (accumulate: parameter
/// gradients sum over micro-batches). Grid-stride over OUT·HIDDEN.
template <typename DY, typename Y, typename X, typename DW, typename DB, i64 BATCH, i64 SEQ, i64 HIDDEN, i64 OUT>
MT_DEVICE void poolerBackwardParams(const DY *dy, const Y *y, const X *x, DW *dweight, DB *dbias) {
  for (i64 e = globalThread(); e < OUT * HIDDEN; e += gridStride()) {
    const i64 o = e / HIDDEN, i = e % HIDDEN;
    float acc = 0.0f, biasAcc = 0.0f;
    for (i64 b = 0; b < BATCH; ++b) {
      const float dz = poolerDz(dy, y, b * OUT + o);
      acc += dz * float(load(x + b * SEQ * HIDDEN + i));
      biasAcc += dz;
    }
    store(dweight + e, float(load(dweight + e)) + acc);
    if (i == 0)
      store(dbias + o, float(load(dbias + o)) + biasAcc);
  }
}

} // namespace mt
