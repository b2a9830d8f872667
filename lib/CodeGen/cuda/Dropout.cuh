//===- Dropout.cuh - Inverted dropout with the CPU's mask -------------------===//
//
// y = x·keep/(1 − rate), keep iff Philox bits >= THRESHOLD (Philox.cuh). The backward is the same kernel on the
// gradient (same seed and stream). Outside training the op is a copy. dropoutAdd adds a residual in the same pass. Each thread takes four consecutive local
// elements, which share one Philox block whenever the shard's runs are multiples of four (always unsharded), so
// the generator runs once per four elements as on the CPU; otherwise each element draws its own block.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// Calls f(i, v) for every element i of this thread's grid-stride share, v = x[i] dropped out (in the compute type).
template <typename X, i64 N, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK, typename F>
MT_DEVICE void forEachDropped(const X *x, double scale, u64 seed, u64 stream, int training, u64 offset, F f) {
  typedef typename Compute<X>::type C;
  const bool aligned = LOCAL_CHUNK % 4 == 0;
  for (i64 q = globalThread(); q * 4 < N; q += gridStride()) {
    const i64 first = q * 4;
    u32 words[4];
    if (training && aligned)
      philoxWords(seed, stream, fullIndex<LOCAL_CHUNK, FULL_CHUNK>(u64(first), offset) / 4, words);
    for (int j = 0; j < 4 && first + j < N; ++j) {
      const i64 i = first + j;
      C v = load(x + i);
      if (training) {
        u32 bits = aligned ? words[j] : randomBits(seed, stream, fullIndex<LOCAL_CHUNK, FULL_CHUNK>(u64(i), offset));
        v = u64(bits) >= THRESHOLD ? v * C(scale) : C(0);
      }
      f(i, v);
    }
  }
}

template <typename X, typename Y, i64 N, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void dropout(const X *x, Y *y, double scale, u64 seed, u64 stream, int training, u64 offset) {
  forEachDropped<X, N, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(x, scale, seed, stream, training, offset,
                                                          [&](i64 i, typename Compute<X>::type v) { store(y + i, v); });
}

/// y = residual + dropout(x) (mt.dropout_add, --mt-fuse-elementwise): the dropped value is rounded to x's type
/// first, as the unfused dropout stored it, so the sum is the unfused add's.
template <typename X, typename R, typename Y, i64 N, u64 THRESHOLD, u64 LOCAL_CHUNK, u64 FULL_CHUNK>
MT_DEVICE void dropoutAdd(const X *x, const R *residual, Y *y, double scale, u64 seed, u64 stream, int training,
                          u64 offset) {
  forEachDropped<X, N, THRESHOLD, LOCAL_CHUNK, FULL_CHUNK>(x, scale, seed, stream, training, offset,
                                                          [&](i64 i, typename Compute<X>::type v) {
                                                            X dropped;
                                                            store(&dropped, v);
                                                            store(y + i, load(residual + i) + load(&dropped));
                                                          });
}

} // namespace mt
