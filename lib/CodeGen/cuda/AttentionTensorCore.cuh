//===- AttentionTensorCore.cuh - The attention forward on tensor cores (FlashAttention-2's) -===//
//
// The forward of Attention.cuh for 16-bit q, k, v (bf16 or f16) and a head dimension that is a multiple of 16,
// on tensor cores (Mma.cuh): a block of 4 warps takes 64 query rows of one (batch, head), 16 per warp; key and
// value tiles of 64 rows are staged in shared memory as raw 16-bit values; per tile each warp computes its 16x64
// scores S = q·kᵀ with mma, the online softmax in registers (row maximum and sum over the four lanes that share a
// row), and adds P·v with mma, where P's fragments are the score registers themselves, rounded to q's type (the
// accumulator layout of S is the A-operand layout of P, FlashAttention-2's register reuse). Masks, grouped
// queries, dropout (the CPU's Philox mask, element by element) and the lse output are Attention.cuh's; a score
// bias (T5) takes the CUDA-core kernel.
//
// Numerics against the CPU: q·kᵀ is exact products summed in f32 (in the tensor core's order); the probabilities
// are rounded to 16 bits before P·v, as FlashAttention does, where the CPU multiplies in f32. The row sums (and so
// lse) use the unrounded probabilities, as the CPU's do.
//
// Not yet tuned: the tiles are staged with 16-bit loads and v's fragments gathered from two rows each (ldmatrix,
// cp.async double buffering and a wider head-dimension split are the next steps, measured on a GPU).
//
//===----------------------------------------------------------------------===//

namespace mt {

/// Rows [first, first + ROWS) of a [*, SEQ, HEADS, D] tensor's head `head` into `tile` as raw 16-bit values, zeros
/// past SEQ. Every thread of the block takes part.
template <typename T, i64 SEQ, i64 HEADS, i64 D, int ROWS, int THREADS, int STRIDE>
MT_DEVICE void stageBits(const T *x, i64 batch, i64 head, i64 first, unsigned short (*tile)[STRIDE]) {
  for (int t = threadIdx.x; t < ROWS * D; t += THREADS) {
    const i64 r = first + t / D, d = t % D;
    tile[t / D][d] = r < SEQ ? bitsOf(load(x + ((batch * SEQ + r) * HEADS + head) * D + d), (const T *)0) : 0;
  }
}

/// A warp's A-operand fragments of 16 rows of a [*, SEQ, HEADS, D] tensor's head `head` (zeros past SEQ), over
/// the whole head dimension: a[t] covers dimensions [16t, 16t + 16). `rows` are this lane's two rows.
template <typename T, i64 SEQ, i64 HEADS, i64 D>
MT_DEVICE void loadRowFragments(const T *x, i64 batch, i64 head, const i64 (&rows)[2], u32 (&a)[D / 16][4]) {
  const int quad = threadIdx.x % 4;
  for (int t = 0; t < int(D / 16); ++t)
    for (int r = 0; r < 2; ++r)
      for (int half = 0; half < 2; ++half) {
        const i64 row = rows[r], d = 16 * t + 8 * half + 2 * quad;
        const T *at = x + ((batch * SEQ + row) * HEADS + head) * D + d;
        a[t][2 * half + r] = row < SEQ ? packPair<T>(load(at), load(at + 1)) : 0u;
      }
}

/// acc[n] += A·B over a 64-wide contraction, where A is a warp's 16x64 tile held as accumulator fragments x[8][4]
/// (columns 8n + 2quad, +1 in x[n]; FlashAttention-2's reuse of an accumulator as an A operand, rounded to T) and
/// B[c][col] = tile[c][col] of a staged [64][STRIDE] tile (two of its rows per register).
template <typename T, int DN, int STRIDE>
MT_DEVICE void accumulateTimesTile(const float (&x)[8][4], const unsigned short (*tile)[STRIDE], float (&acc)[DN][4]) {
  const int lane = threadIdx.x % 32, group = lane / 4, quad = lane % 4;
  for (int t = 0; t < 4; ++t) {
    const u32 a[4] = {packPair<T>(x[2 * t][0], x[2 * t][1]), packPair<T>(x[2 * t][2], x[2 * t][3]),
                      packPair<T>(x[2 * t + 1][0], x[2 * t + 1][1]), packPair<T>(x[2 * t + 1][2], x[2 * t + 1][3])};
    for (int n = 0; n < DN; ++n) {
      const int column = 8 * n + group, c = 16 * t + 2 * quad;
      const u32 b[2] = {joinPair(tile[c][column], tile[c + 1][column]),
                        joinPair(tile[c + 8][column], tile[c + 9][column])};
      mma16816<T>(acc[n], a, b);
    }
  }
}

/// x[n] = A·tile[8n .. 8n + 8)ᵀ for n < 8: a warp's 16 rows (fragments a over the head dimension) against the 64
/// staged rows of a [64][STRIDE] tile (q·kᵀ, dO·vᵀ, k·qᵀ, v·dOᵀ).
template <typename T, i64 D, int STRIDE>
MT_DEVICE void timesTileTransposed(const u32 (&a)[D / 16][4], const unsigned short (*tile)[STRIDE], float (&x)[8][4]) {
  const int lane = threadIdx.x % 32, group = lane / 4, quad = lane % 4;
  for (int n = 0; n < 8; ++n) {
    for (int e = 0; e < 4; ++e)
      x[n][e] = 0.0f;
    const unsigned short *row = tile[8 * n + group];
    for (int t = 0; t < int(D / 16); ++t) {
      const u32 b[2] = {joinPair(row[16 * t + 2 * quad], row[16 * t + 2 * quad + 1]),
                        joinPair(row[16 * t + 8 + 2 * quad], row[16 * t + 9 + 2 * quad])};
      mma16816<T>(x[n], a[t], b);
    }
  }
}

/// Grid (ceil(SQ / 64), H, B), 128 threads.
template <typename T, typename O, typename L, i64 B, i64 SQ, i64 SK, i64 H, i64 G, i64 D, int MASK, u64 THRESHOLD,
          u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionForwardTensorCore(const T *q, const T *k, const T *v, const int *padMask, O *out, L *lse,
                                          float scale, float keepScale, u64 seed, u64 stream, int training,
                                          u64 offset) {
  static_assert(D % 16 == 0, "the head dimension is a multiple of 16");
  constexpr int BR = 64, BC = 64, THREADS = 128, STRIDE = int(D) + 8; // +8: no two lanes' fragments share a bank
  constexpr int DN = int(D) / 8, KN = BC / 8;
  static_assert(BC == 64 && KN == 8, "the helpers take 64-wide tiles");
  const i64 b = blockIdx.z, h = blockIdx.y, g = h / (H / G);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, group = lane / 4, quad = lane % 4;
  const i64 rowBase = i64(blockIdx.x) * BR + warp * 16; // this warp's first query row
  const i64 rows[2] = {rowBase + group, rowBase + group + 8}; // the two rows this lane's fragments cover
  __shared__ unsigned short ks[BC][STRIDE], vs[BC][STRIDE];

  // q's fragments for the whole head dimension, once.
  u32 qa[D / 16][4];
  loadRowFragments<T, SQ, H, D>(q, b, h, rows, qa);

  float acc[DN][4];
  for (int n = 0; n < DN; ++n)
    for (int e = 0; e < 4; ++e)
      acc[n][e] = 0.0f;
  float m[2] = {-infinity<float>(), -infinity<float>()}, l[2] = {0.0f, 0.0f}; // l: this lane's part of the sum

  const i64 keys = keyLimit<MASK, BR, SK>();
  for (i64 j0 = 0; j0 < keys; j0 += BC) {
    __syncthreads(); // the previous tiles are no longer read
    stageBits<T, SK, G, D, BC, THREADS, STRIDE>(k, b, g, j0, ks);
    stageBits<T, SK, G, D, BC, THREADS, STRIDE>(v, b, g, j0, vs);
    __syncthreads();
    if (MASK == kCausal && j0 > rowBase + 15)
      continue; // every key of the tile is after this warp's rows

    float s[KN][4];
    timesTileTransposed<T, D, STRIDE>(qa, ks, s); // S = q·kᵀ
    // Scale and mask; the new row maxima over the four lanes of each row.
    float tileMax[2] = {-infinity<float>(), -infinity<float>()};
    for (int n = 0; n < KN; ++n)
      for (int e = 0; e < 4; ++e) {
        const i64 i = rows[e / 2], j = j0 + 8 * n + 2 * quad + (e % 2);
        const bool seen = i < SQ && j < SK && attends<MASK, SK>(b, i, j, padMask);
        s[n][e] = seen ? s[n][e] * scale : -infinity<float>();
        tileMax[e / 2] = s[n][e] > tileMax[e / 2] ? s[n][e] : tileMax[e / 2];
      }
    float correction[2];
    for (int r = 0; r < 2; ++r) {
      for (int offset = 1; offset < 4; offset <<= 1) {
        const float other = __shfl_xor_sync(0xffffffffu, tileMax[r], offset);
        tileMax[r] = other > tileMax[r] ? other : tileMax[r];
      }
      const float mNew = tileMax[r] > m[r] ? tileMax[r] : m[r];
      // A row with no key seen so far keeps m = −inf: nothing to correct, and its probabilities are 0.
      correction[r] = mNew == -infinity<float>() ? 1.0f : expf(m[r] - mNew);
      m[r] = mNew;
      l[r] *= correction[r];
    }
    for (int n = 0; n < DN; ++n)
      for (int e = 0; e < 4; ++e)
        acc[n][e] *= correction[e / 2];
    // P (summed unrounded), dropped out, then as P·v's A fragments: k-step t takes score tiles 2t and 2t+1.
    for (int n = 0; n < KN; ++n)
      for (int e = 0; e < 4; ++e) {
        const float p = m[e / 2] == -infinity<float>() ? 0.0f : expf(s[n][e] - m[e / 2]);
        l[e / 2] += p;
        const i64 i = rows[e / 2], j = j0 + 8 * n + 2 * quad + (e % 2);
        s[n][e] = p == 0.0f ? 0.0f
                            : p * dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(
                                      b, h, i, j, keepScale, seed, stream, training, offset);
      }
    accumulateTimesTile<T, DN, STRIDE>(s, vs, acc); // += P·v
  }

  // The row sums over the four lanes; out = acc / l and lse = m + log l (0 and −inf for a row that sees no key).
  for (int r = 0; r < 2; ++r)
    for (int offset = 1; offset < 4; offset <<= 1)
      l[r] += __shfl_xor_sync(0xffffffffu, l[r], offset);
  for (int r = 0; r < 2; ++r) {
    const i64 i = rows[r];
    if (i >= SQ)
      continue;
    for (int n = 0; n < DN; ++n)
      for (int c = 0; c < 2; ++c)
        store(out + ((b * SQ + i) * H + h) * D + 8 * n + 2 * quad + c, l[r] > 0.0f ? acc[n][2 * r + c] / l[r] : 0.0f);
    if (quad == 0)
      store(lse + (b * H + h) * SQ + i, l[r] > 0.0f ? m[r] + logf(l[r]) : -infinity<float>());
  }
}

/// The backward's dq and the rows' statistics, as attentionBackwardQuery (Attention.cuh) defines them, on tensor
/// cores: a warp's 16 query rows; pass 1 sums e_ij = exp(s_ij − lse_i) and e_ij·dP_ij (in double, over the
/// lane's columns, then the four lanes of the row), pass 2 adds dS_ij·k_j with dS rounded to T for the product.
/// Grid (ceil(SQ / 64), H, B), 128 threads. `out` and `bias` are not read (the CUDA-core kernel's arguments).
template <typename T, typename O, typename BT, typename L, typename DQ, typename R, i64 B, i64 SQ, i64 SK, i64 H,
          i64 G, i64 D, int MASK, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionBackwardQueryTensorCore(const T *dout, const O *out, const T *q, const T *k, const T *v,
                                                const int *padMask, const BT *bias, const L *lse, DQ *dq,
                                                R *rowStats, float scale, float keepScale, u64 seed, u64 stream,
                                                int training, u64 offset) {
  constexpr int BR = 64, BC = 64, THREADS = 128, STRIDE = int(D) + 8, DN = int(D) / 8;
  const i64 b = blockIdx.z, h = blockIdx.y, g = h / (H / G);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad = lane % 4;
  const i64 rowBase = i64(blockIdx.x) * BR + warp * 16;
  const i64 rows[2] = {rowBase + lane / 4, rowBase + lane / 4 + 8};
  __shared__ unsigned short ks[BC][STRIDE], vs[BC][STRIDE];
  u32 qa[D / 16][4], da[D / 16][4];
  loadRowFragments<T, SQ, H, D>(q, b, h, rows, qa);
  loadRowFragments<T, SQ, H, D>(dout, b, h, rows, da);
  float rowLse[2];
  for (int r = 0; r < 2; ++r)
    rowLse[r] = rows[r] < SQ ? float(load(lse + (b * H + h) * SQ + rows[r])) : -infinity<float>();
  float acc[DN][4];
  for (int n = 0; n < DN; ++n)
    for (int e = 0; e < 4; ++e)
      acc[n][e] = 0.0f;
  double sumE[2] = {0.0, 0.0}, sumEdP[2] = {0.0, 0.0};
  float inverse[2] = {0.0f, 0.0f}, rowDot[2] = {0.0f, 0.0f};

  const i64 keys = keyLimit<MASK, BR, SK>();
  for (int pass = 0; pass < 2; ++pass) {
    for (i64 j0 = 0; j0 < keys; j0 += BC) {
      __syncthreads();
      stageBits<T, SK, G, D, BC, THREADS, STRIDE>(k, b, g, j0, ks);
      stageBits<T, SK, G, D, BC, THREADS, STRIDE>(v, b, g, j0, vs);
      __syncthreads();
      if (MASK == kCausal && j0 > rowBase + 15)
        continue;
      float s[8][4], dp[8][4];
      timesTileTransposed<T, D, STRIDE>(qa, ks, s);  // q·kᵀ
      timesTileTransposed<T, D, STRIDE>(da, vs, dp); // dO·vᵀ
      for (int n = 0; n < 8; ++n)
        for (int e = 0; e < 4; ++e) {
          const int r = e / 2;
          const i64 i = rows[r], j = j0 + 8 * n + 2 * quad + (e % 2);
          const bool seen = i < SQ && j < SK && rowLse[r] > -infinity<float>() && attends<MASK, SK>(b, i, j, padMask);
          const float el = seen ? expf(s[n][e] * scale - rowLse[r]) : 0.0f;
          const float dpd = seen ? dp[n][e] * dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(
                                                  b, h, i, j, keepScale, seed, stream, training, offset)
                                 : 0.0f;
          if (pass == 0) {
            sumE[r] += el;
            sumEdP[r] += double(el) * double(dpd);
          } else {
            s[n][e] = el * inverse[r] * (dpd - rowDot[r]); // dS
          }
        }
      if (pass == 1)
        accumulateTimesTile<T, DN, STRIDE>(s, ks, acc); // += dS·k
    }
    if (pass == 0)
      for (int r = 0; r < 2; ++r) {
        for (int offset = 1; offset < 4; offset <<= 1) {
          sumE[r] += __shfl_xor_sync(0xffffffffu, sumE[r], offset);
          sumEdP[r] += __shfl_xor_sync(0xffffffffu, sumEdP[r], offset);
        }
        inverse[r] = sumE[r] > 0.0 ? float(1.0 / sumE[r]) : 0.0f;
        rowDot[r] = sumE[r] > 0.0 ? float(sumEdP[r] / sumE[r]) : 0.0f;
        if (rows[r] < SQ && quad == 0) {
          rowStats[((b * H + h) * SQ + rows[r]) * 2] = R(inverse[r]);
          rowStats[((b * H + h) * SQ + rows[r]) * 2 + 1] = R(rowDot[r]);
        }
      }
  }
  for (int r = 0; r < 2; ++r)
    if (rows[r] < SQ)
      for (int n = 0; n < DN; ++n)
        for (int c = 0; c < 2; ++c)
          store(dq + ((b * SQ + rows[r]) * H + h) * D + 8 * n + 2 * quad + c, acc[n][2 * r + c] * scale);
}

/// dk and dv (attentionBackwardKeyValue's) on tensor cores: a warp's 16 key rows of the key/value head, summed over
/// its H/G query heads and 64-row query tiles (q and dO staged with their lse and statistics); the transposed
/// scores k·qᵀ and v·dOᵀ come out with keys as rows, so P and dS are A operands as they stand. Grid
/// (ceil(SK / 64), G, B), 128 threads.
template <typename T, typename O, typename BT, typename L, typename DK, typename DV, typename R, i64 B, i64 SQ,
          i64 SK, i64 H, i64 G, i64 D, int MASK, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void attentionBackwardKeyValueTensorCore(const T *dout, const O *out, const T *q, const T *k, const T *v,
                                                   const int *padMask, const BT *bias, const L *lse, DK *dk, DV *dv,
                                                   const R *rowStats, float scale, float keepScale, u64 seed,
                                                   u64 stream, int training, u64 offset) {
  constexpr int BK = 64, BQ = 64, THREADS = 128, STRIDE = int(D) + 8, DN = int(D) / 8;
  const i64 b = blockIdx.z, g = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad = lane % 4;
  const i64 keyBase = i64(blockIdx.x) * BK + warp * 16;
  const i64 keysOf[2] = {keyBase + lane / 4, keyBase + lane / 4 + 8};
  __shared__ unsigned short qs[BQ][STRIDE], dos[BQ][STRIDE];
  __shared__ float lses[BQ], inverses[BQ], dots[BQ];
  u32 ka[D / 16][4], va[D / 16][4];
  loadRowFragments<T, SK, G, D>(k, b, g, keysOf, ka);
  loadRowFragments<T, SK, G, D>(v, b, g, keysOf, va);
  float dkAcc[DN][4], dvAcc[DN][4];
  for (int n = 0; n < DN; ++n)
    for (int e = 0; e < 4; ++e)
      dkAcc[n][e] = dvAcc[n][e] = 0.0f;
  // Causal: query rows before this block's first key see none of its keys.
  const i64 firstQuery = MASK == kCausal ? i64(blockIdx.x) * BK : 0;
  for (i64 r = 0; r < H / G; ++r) {
    const i64 h = g * (H / G) + r;
    for (i64 i0 = firstQuery - firstQuery % BQ; i0 < SQ; i0 += BQ) {
      __syncthreads();
      stageBits<T, SQ, H, D, BQ, THREADS, STRIDE>(q, b, h, i0, qs);
      stageBits<T, SQ, H, D, BQ, THREADS, STRIDE>(dout, b, h, i0, dos);
      if (threadIdx.x < BQ) {
        const i64 i = i0 + threadIdx.x;
        lses[threadIdx.x] = i < SQ ? float(load(lse + (b * H + h) * SQ + i)) : -infinity<float>();
        inverses[threadIdx.x] = i < SQ ? float(rowStats[((b * H + h) * SQ + i) * 2]) : 0.0f;
        dots[threadIdx.x] = i < SQ ? float(rowStats[((b * H + h) * SQ + i) * 2 + 1]) : 0.0f;
      }
      __syncthreads();
      if (MASK == kCausal && i0 + BQ - 1 < keyBase)
        continue; // every query of the tile is before this warp's keys
      float p[8][4], ds[8][4];
      timesTileTransposed<T, D, STRIDE>(ka, qs, p);  // k·qᵀ: keys as rows
      timesTileTransposed<T, D, STRIDE>(va, dos, ds); // v·dOᵀ
      for (int n = 0; n < 8; ++n)
        for (int e = 0; e < 4; ++e) {
          const i64 j = keysOf[e / 2];
          const int column = 8 * n + 2 * quad + (e % 2);
          const i64 i = i0 + column;
          const bool seen = j < SK && i < SQ && lses[column] > -infinity<float>() && attends<MASK, SK>(b, i, j, padMask);
          const float pij = seen ? expf(p[n][e] * scale - lses[column]) * inverses[column] : 0.0f;
          const float factor = seen ? dropoutFactor<H, SQ, SK, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(
                                          b, h, i, j, keepScale, seed, stream, training, offset)
                                    : 0.0f;
          ds[n][e] = pij * (ds[n][e] * factor - dots[column]);
          p[n][e] = pij * factor;
        }
      accumulateTimesTile<T, DN, STRIDE>(p, dos, dvAcc); // += (P∘z)ᵀ·dO
      accumulateTimesTile<T, DN, STRIDE>(ds, qs, dkAcc); // += dSᵀ·q
    }
  }
  for (int r = 0; r < 2; ++r)
    if (keysOf[r] < SK)
      for (int n = 0; n < DN; ++n)
        for (int c = 0; c < 2; ++c) {
          const i64 at = ((b * SK + keysOf[r]) * G + g) * D + 8 * n + 2 * quad + c;
          store(dk + at, dkAcc[n][2 * r + c] * scale);
          store(dv + at, dvAcc[n][2 * r + c]);
        }
}

} // namespace mt
