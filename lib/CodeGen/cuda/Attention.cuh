//===- Attention.cuh - Fused attention, forward and backward, flash-attention style -===//
//
// out = dropout(softmax(scale·q·kᵀ + mask))·v without materialising the [batch, heads, q, kv] scores: the forward
// keeps a running maximum and sum per query row (online softmax) and saves the row's log-sum-exp; the backward
// recomputes the probabilities from it. Layouts as runtime/cpu/Attention.cpp: q and out [B, SQ, H, D], k and v
// [B, SK, G, D] (query head h reads key/value head h / (H/G)), lse [B, H, SQ]; masks causal (key j seen by query
// i iff j <= i), bidirectional, or padding (padMask[b, j] != 0 keeps key j). Dropout drops probability
// (b, h, i, j) by Philox index ((b·H + h)·SQ + i)·SK + j of the unsharded op, the CPU's mask.
//
// This first version computes on CUDA cores, one thread per query row (forward, dq) or key row (dk, dv), with key
// or query tiles staged in shared memory: correct and deterministic (each output element has one writer, summed in
// a fixed order), not yet fast. The tensor-core version is the performance work of a GPU session (docs/cuda.md).
// The backward follows the CPU's arithmetic (runtime/cpu/Attention.cpp), not FlashAttention-2's shortcut
// D_i = dO_i · out_i, which with a 16-bit out carries its rounding into dS: the dq kernel first sums each row's
// recomputed probabilities (renormalising them, as the saved lse is rounded) and D_i = Σ_j P_ij·dP_ij in double,
// and leaves both in a [B, H, SQ, 2] workspace that the dk/dv kernel reads.
//
//===----------------------------------------------------------------------===//

namespace mt {

enum AttentionMaskKind { kCausal = 0, kBidirectional = 1, kPadding = 2 };

/// Whether key j is visible to query i of batch b.
template <int MASK, i64 SK> MT_DEVICE bool attends(i64 b, i64 i, i64 j, const int *padMask) {
  if (MASK == kCausal)
    return j <= i;
  if (MASK == kPadding)
    return padMask[b * SK + j] != 0;
  return true;
}

/// The score bias of (h, i, j): bias[h, i, j] (T5's relative positions, [H, SQ, SK]), or 0 without one.
template <typename BT, i64 SQ, i64 SK> MT_DEVICE float scoreBias(const BT *bias, i64 h, i64 i, i64 j) {
  return bias ? float(load(bias + (h * SQ + i) * SK + j)) : 0.0f;
}

/// The dropout factor of probability (b, h, i, j): keepScale if kept, 0 if dropped, 1 outside training.
template <i64 H, i64 SQ, i64 SK, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE float dropoutFactor(i64 b, i64 h, i64 i, i64 j, float keepScale, u64 seed, u64 stream, int training,
                              u64 offset) {
  if (!training || THRESHOLD == 0)
    return 1.0f;
  const u64 local = u64(((b * H + h) * SQ + i) * SK + j);
  return u64(randomBits(seed, stream, fullIndex<LOCAL_CHUNK, FULL_CHUNK>(local, offset))) >= THRESHOLD ? keepScale
                                                                                                       : 0.0f;
}

/// Stages rows [first, first + TILE) of a [*, ROWS, HEADS, D] tensor's head `head` in shared memory as float,
/// zeros past ROWS. Every thread of the block takes part.
template <typename T, i64 ROWS, i64 HEADS, i64 D, int TILE, int BLOCK>
MT_DEVICE void stageRows(const T *x, i64 batch, i64 head, i64 first, float (*tile)[D]) {
  for (int t = threadIdx.x; t < TILE * D; t += BLOCK) {
    const i64 r = first + t / D, d = t % D;
    tile[t / D][d] = r < ROWS ? load(x + ((batch * ROWS + r) * HEADS + head) * D + d) : 0.0f;
  }
}

/// The keys a block of query rows may see: all, or under the causal mask none past its last row.
template <int MASK, int BLOCK, i64 SK> MT_DEVICE i64 keyLimit() {
  const i64 last = (i64(blockIdx.x) + 1) * BLOCK;
  return MASK == kCausal && last < SK ? last : SK;
}

/// Calls f(jj, j) for each key j of the block's key range that query row i of batch b sees, with key and value
/// tiles of TK rows staged in ks and vs (f reads row jj of them). Every thread of the block must call it, since
/// all of them stage the tiles; a thread whose row takes no part passes active = false.
template <typename K, typename V, i64 SK, i64 G, i64 D, int MASK, int BLOCK, int TK, typename F>
MT_DEVICE void forEachVisibleKey(const K *k, const V *v, const int *padMask, i64 b, i64 g, i64 i, bool active,
                                 float (*ks)[D], float (*vs)[D], F f) {
  const i64 keys = keyLimit<MASK, BLOCK, SK>();
  for (i64 j0 = 0; j0 < keys; j0 += TK) {
    __syncthreads(); // the previous tile is no longer read
    stageRows<K, SK, G, D, TK, BLOCK>(k, b, g, j0, ks);
    stageRows<V, SK, G, D, TK, BLOCK>(v, b, g, j0, vs);
    __syncthreads();
    for (int jj = 0; active && jj < TK && j0 + jj < keys; ++jj)
      if (attends<MASK, SK>(b, i, j0 + jj, padMask))
        f(jj, j0 + jj);
  }
}

/// Grid (ceil(SQ / BLOCK), H, B); thread = query row.
template <typename Q, typename K, typename V, typename BT, typename O, typename L, i64 B, i64 SQ, i64 SK, i64 H,
          i64 G, i64 D, int MASK, int BLOCK, int TK, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionForward(const Q *q, const K *k, const V *v, const int *padMask, const BT *bias, O *out,
                                L *lse, float scale, float keepScale, u64 seed, u64 stream, int training,
                                u64 offset) {
  const i64 b = blockIdx.z, h = blockIdx.y, g = h / (H / G);
  const i64 i = i64(blockIdx.x) * BLOCK + threadIdx.x;
  const bool active = i < SQ;
  __shared__ float ks[TK][D], vs[TK][D];
  float qr[D], acc[D];
  for (i64 d = 0; d < D; ++d) {
    qr[d] = active ? load(q + ((b * SQ + i) * H + h) * D + d) : 0.0f;
    acc[d] = 0.0f;
  }
  float m = -infinity<float>(), l = 0.0f;
  forEachVisibleKey<K, V, SK, G, D, MASK, BLOCK, TK>(k, v, padMask, b, g, i, active, ks, vs, [&](int jj, i64 j) {
    float s = 0.0f;
    for (i64 d = 0; d < D; ++d)
      s += qr[d] * ks[jj][d];
    s = s * scale + scoreBias<BT, SQ, SK>(bias, h, i, j);
    const float mNew = s > m ? s : m;
    const float correction = expf(m - mNew), p = expf(s - mNew);
    l = l * correction + p;
    const float pd = p * dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(b, h, i, j, keepScale, seed,
                                                                                    stream, training, offset);
    for (i64 d = 0; d < D; ++d)
      acc[d] = acc[d] * correction + pd * vs[jj][d];
    m = mNew;
  });
  if (!active)
    return;
  // A row that sees no key: out 0, lse −inf, as the CPU.
  for (i64 d = 0; d < D; ++d)
    store(out + ((b * SQ + i) * H + h) * D + d, l > 0.0f ? acc[d] / l : 0.0f);
  store(lse + (b * H + h) * SQ + i, l > 0.0f ? m + logf(l) : -infinity<float>());
}

/// dq, and the rows' statistics. Grid (ceil(SQ / BLOCK), H, B); thread = query row. Pass 1 sums e_ij =
/// exp(s_ij − lse_i) and e_ij·dP_ij over the row's keys; pass 2 adds dS_ij·k_j with P_ij = e_ij / Σ_j e_ij.
template <typename DO, typename O, typename Q, typename K, typename V, typename BT, typename L, typename DQ,
          typename R, i64 B, i64 SQ, i64 SK, i64 H, i64 G, i64 D, int MASK, int BLOCK, int TK, u64 THRESHOLD,
          u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionBackwardQuery(const DO *dout, const O *out, const Q *q, const K *k, const V *v,
                                      const int *padMask, const BT *bias, const L *lse, DQ *dq, R *rowStats,
                                      float scale,
                                      float keepScale, u64 seed, u64 stream, int training, u64 offset) {
  const i64 b = blockIdx.z, h = blockIdx.y, g = h / (H / G);
  const i64 i = i64(blockIdx.x) * BLOCK + threadIdx.x;
  const bool active = i < SQ;
  __shared__ float ks[TK][D], vs[TK][D];
  float qr[D], dor[D], acc[D];
  for (i64 d = 0; d < D; ++d) {
    const i64 at = ((b * SQ + i) * H + h) * D + d;
    qr[d] = active ? load(q + at) : 0.0f;
    dor[d] = active ? load(dout + at) : 0.0f;
    acc[d] = 0.0f;
  }
  const float rowLse = active ? float(load(lse + (b * H + h) * SQ + i)) : 0.0f;
  const bool seesKeys = active && rowLse > -infinity<float>();
  double sumE = 0.0, sumEdP = 0.0;
  float inverse = 0.0f, rowDot = 0.0f;
  for (int pass = 0; pass < 2; ++pass) {
    forEachVisibleKey<K, V, SK, G, D, MASK, BLOCK, TK>(k, v, padMask, b, g, i, seesKeys, ks, vs, [&](int jj, i64 j) {
      float s = 0.0f, dp = 0.0f;
      for (i64 d = 0; d < D; ++d) {
        s += qr[d] * ks[jj][d];
        dp += dor[d] * vs[jj][d];
      }
      const float e = expf(s * scale + scoreBias<BT, SQ, SK>(bias, h, i, j) - rowLse);
      dp *= dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(b, h, i, j, keepScale, seed, stream,
                                                                         training, offset);
      if (pass == 0) {
        sumE += e;
        sumEdP += double(e) * double(dp);
        return;
      }
      const float ds = e * inverse * (dp - rowDot);
      for (i64 d = 0; d < D; ++d)
        acc[d] += ds * ks[jj][d];
    });
    if (pass == 0) {
      inverse = sumE > 0.0 ? float(1.0 / sumE) : 0.0f;
      rowDot = sumE > 0.0 ? float(sumEdP / sumE) : 0.0f;
      if (active) {
        rowStats[((b * H + h) * SQ + i) * 2] = R(inverse);
        rowStats[((b * H + h) * SQ + i) * 2 + 1] = R(rowDot);
      }
    }
  }
  if (active)
    for (i64 d = 0; d < D; ++d)
      store(dq + ((b * SQ + i) * H + h) * D + d, acc[d] * scale);
}

/// dk and dv, summed over the H/G query heads of the key/value head. Grid (ceil(SK / BLOCK), G, B); thread = key
/// row; query tiles of TQ rows staged with their dO, lse and the statistics attentionBackwardQuery left.
template <typename DO, typename O, typename Q, typename K, typename V, typename BT, typename L, typename DK,
          typename DV, typename R, i64 B, i64 SQ, i64 SK, i64 H, i64 G, i64 D, int MASK, int BLOCK, int TQ,
          u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionBackwardKeyValue(const DO *dout, const O *out, const Q *q, const K *k, const V *v,
                                         const int *padMask, const BT *bias, const L *lse, DK *dk, DV *dv,
                                         const R *rowStats,
                                         float scale, float keepScale, u64 seed, u64 stream, int training,
                                         u64 offset) {
  static_assert(TQ <= BLOCK, "one thread per staged query row loads its statistics");
  const i64 b = blockIdx.z, g = blockIdx.y;
  const i64 j = i64(blockIdx.x) * BLOCK + threadIdx.x;
  const bool active = j < SK;
  __shared__ float qs[TQ][D], dos[TQ][D], lses[TQ], inverses[TQ], dots[TQ];
  float kr[D], vr[D], dkAcc[D], dvAcc[D];
  for (i64 d = 0; d < D; ++d) {
    const i64 at = ((b * SK + j) * G + g) * D + d;
    kr[d] = active ? load(k + at) : 0.0f;
    vr[d] = active ? load(v + at) : 0.0f;
    dkAcc[d] = dvAcc[d] = 0.0f;
  }
  const bool visible = active && (MASK != kPadding || padMask[b * SK + j] != 0);
  // Causal: query rows before this block's first key see none of its keys.
  const i64 firstQuery = MASK == kCausal ? i64(blockIdx.x) * BLOCK : 0;
  for (i64 r = 0; r < H / G; ++r) {
    const i64 h = g * (H / G) + r;
    for (i64 i0 = firstQuery - firstQuery % TQ; i0 < SQ; i0 += TQ) {
      __syncthreads();
      stageRows<Q, SQ, H, D, TQ, BLOCK>(q, b, h, i0, qs);
      stageRows<DO, SQ, H, D, TQ, BLOCK>(dout, b, h, i0, dos);
      if (threadIdx.x < TQ) {
        const i64 i = i0 + threadIdx.x;
        lses[threadIdx.x] = i < SQ ? float(load(lse + (b * H + h) * SQ + i)) : -infinity<float>();
        inverses[threadIdx.x] = i < SQ ? float(rowStats[((b * H + h) * SQ + i) * 2]) : 0.0f;
        dots[threadIdx.x] = i < SQ ? float(rowStats[((b * H + h) * SQ + i) * 2 + 1]) : 0.0f;
      }
      __syncthreads();
      for (int ii = 0; visible && ii < TQ && i0 + ii < SQ; ++ii) {
        const i64 i = i0 + ii;
        if ((MASK == kCausal && j > i) || !(lses[ii] > -infinity<float>()))
          continue;
        float s = 0.0f, dp = 0.0f;
        for (i64 d = 0; d < D; ++d) {
          s += qs[ii][d] * kr[d];
          dp += dos[ii][d] * vr[d];
        }
        const float p = expf(s * scale + scoreBias<BT, SQ, SK>(bias, h, i, j) - lses[ii]) * inverses[ii];
        const float factor = dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(b, h, i, j, keepScale, seed,
                                                                                          stream, training, offset);
        const float ds = p * (dp * factor - dots[ii]);
        for (i64 d = 0; d < D; ++d) {
          dvAcc[d] += p * factor * dos[ii][d];
          dkAcc[d] += ds * qs[ii][d];
        }
      }
    }
  }
  if (active)
    for (i64 d = 0; d < D; ++d) {
      const i64 at = ((b * SK + j) * G + g) * D + d;
      store(dk + at, dkAcc[d] * scale);
      store(dv + at, dvAcc[d]);
    }
}

/// dbias[h, i, j] = Σ_b dS[b, h, i, j] (overwrite), the batch in order: one thread per bias element, reading the
/// rows' statistics attentionBackwardQuery left. Grid-stride over H·SQ·SK.
template <typename DO, typename Q, typename K, typename V, typename BT, typename L, typename DB, typename R, i64 B,
          i64 SQ, i64 SK, i64 H, i64 G, i64 D, int MASK, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionBackwardBias(const DO *dout, const Q *q, const K *k, const V *v, const int *padMask,
                                     const BT *bias, const L *lse, DB *dbias, const R *rowStats, float scale,
                                     float keepScale, u64 seed, u64 stream, int training, u64 offset) {
  for (i64 e = globalThread(); e < H * SQ * SK; e += gridStride()) {
    const i64 h = e / (SQ * SK), i = e / SK % SQ, j = e % SK, g = h / (H / G);
    float acc = 0.0f;
    for (i64 b = 0; b < B; ++b) {
      const float rowLse = float(load(lse + (b * H + h) * SQ + i));
      if (!attends<MASK, SK>(b, i, j, padMask) || !(rowLse > -infinity<float>()))
        continue;
      float s = 0.0f, dp = 0.0f;
      for (i64 d = 0; d < D; ++d) {
        s += float(load(q + ((b * SQ + i) * H + h) * D + d)) * float(load(k + ((b * SK + j) * G + g) * D + d));
        dp += float(load(dout + ((b * SQ + i) * H + h) * D + d)) * float(load(v + ((b * SK + j) * G + g) * D + d));
      }
      const i64 row = ((b * H + h) * SQ + i) * 2;
      const float p = expf(s * scale + scoreBias<BT, SQ, SK>(bias, h, i, j) - rowLse) * float(rowStats[row]);
      dp *= dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(b, h, i, j, keepScale, seed, stream,
                                                                         training, offset);
      acc += p * (dp - float(rowStats[row + 1]));
    }
    store(dbias + e, acc);
  }
}

} // namespace mt
