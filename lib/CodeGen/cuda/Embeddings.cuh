//===- Embeddings.cuh - Token and learned position embeddings -----------------===//
//
// runtime/cpu/Embeddings.cpp's semantics. The table gradients are scatter-adds; instead of atomics (whose order
// varies) each thread owns one column of a block of table rows and adds the tokens in token order, the CPU's own
// order, so the gradient is deterministic and, for f32, equal to the CPU's bit for bit. A vocabulary-parallel
// table holds rows [VOCAB·tpRank, VOCAB·(tpRank + 1)) of VOCAB·TP ids; another rank's id gives a zero row and no
// gradient. An id outside [0, VOCAB·TP) is reported through the status word and gives a zero row.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// One block per token.
template <typename T, typename Y, i64 VOCAB, i64 H, i64 TP>
MT_DEVICE void embeddingForward(const int *ids, const T *table, Y *out, u64 *status, int tpRank) {
  typedef typename Compute<T>::type C;
  const i64 t = blockIdx.x;
  const int id = ids[t];
  if (threadIdx.x == 0 && (id < 0 || id >= VOCAB * TP))
    reportBadIndex(status, t);
  const i64 row = i64(id) - VOCAB * tpRank;
  const bool local = row >= 0 && row < VOCAB;
  for (i64 c = threadIdx.x; c < H; c += blockDim.x)
    store(out + t * H + c, local ? C(load(table + row * H + c)) : C(0));
}

/// grid (columns / blockDim, row blocks of ROWS_PER_BLOCK): dtable[row, c] += dout[t, c] for the tokens t with
/// that row, in token order.
template <typename D, typename G, i64 TOKENS, i64 VOCAB, i64 H, i64 TP, i64 ROWS_PER_BLOCK>
MT_DEVICE void embeddingBackward(const int *ids, const D *dout, G *dtable, u64 *status, int tpRank) {
  typedef typename Compute<G>::type C;
  const i64 c = i64(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 first = i64(blockIdx.y) * ROWS_PER_BLOCK, last = first + ROWS_PER_BLOCK;
  for (i64 t = 0; t < TOKENS; ++t) {
    const int id = ids[t];
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0 && (id < 0 || id >= VOCAB * TP))
      reportBadIndex(status, t);
    const i64 row = i64(id) - VOCAB * tpRank;
    if (row >= first && row < last && row < VOCAB && c < H)
      store(dtable + row * H + c, C(load(dtable + row * H + c)) + C(load(dout + t * H + c)));
  }
}

/// out[b, s] = x[b, s] + table[positionOffset + s]; out may alias x.
template <typename X, typename T, typename Y, i64 BATCH, i64 SEQ, i64 H>
MT_DEVICE void positionEmbeddingForward(const X *x, const T *table, Y *out, i64 positionOffset) {
  for (i64 i = globalThread(); i < BATCH * SEQ * H; i += gridStride()) {
    const i64 p = i / H % SEQ, c = i % H;
    store(out + i, load(x + i) + load(table + (positionOffset + p) * H + c));
  }
}

/// dtable[positionOffset + s] += Σ_b dout[b, s], the batch in order (one thread per table element).
template <typename D, typename G, i64 BATCH, i64 SEQ, i64 H>
MT_DEVICE void positionEmbeddingBackward(const D *dout, G *dtable, i64 positionOffset) {
  typedef typename Compute<G>::type C;
  for (i64 i = globalThread(); i < SEQ * H; i += gridStride()) {
    const i64 p = i / H, c = i % H;
    G *dst = dtable + (positionOffset + p) * H + c;
    C v = load(dst);
    for (i64 b = 0; b < BATCH; ++b)
      v += C(load(dout + (b * SEQ + p) * H + c));
    store(dst, v);
  }
}

} // namespace mt
