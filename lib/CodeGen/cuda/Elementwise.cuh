//===- Elementwise.cuh - Fill, residual add, fan-in, bias ------------------===//
//
// Memory-bound grid-stride loops; every element is written by one thread, so results never depend on the launch.
// The counterparts of runtime/cpu/Elementwise.cpp and addBias / sumRows of runtime/cpu/Linear.cpp.
//
//===----------------------------------------------------------------------===//

namespace mt {

template <typename T, i64 N> MT_DEVICE void fill(T *y, double value) {
  typedef typename Compute<T>::type C;
  for (i64 i = globalThread(); i < N; i += gridStride())
    store(y + i, C(value));
}

/// out = a + b; out may alias a or b.
template <typename A, typename B, typename Y, i64 N> MT_DEVICE void add(const A *a, const B *b, Y *out) {
  for (i64 i = globalThread(); i < N; i += gridStride())
    store(out + i, load(a + i) + load(b + i));
}

/// y = x in y's storage type (mt.cast), rounded to nearest even by store() when it narrows.
template <typename X, typename Y, i64 N> MT_DEVICE void convert(const X *x, Y *y) {
  for (i64 i = globalThread(); i < N; i += gridStride())
    store(y + i, load(x + i));
}

/// y[o, c] = x[o·FULL_CHUNK + rank·CHUNK + c]: a rank's block of a replicated value along one dimension
/// (mt.shard_slice; the CPU's copy in runtime/engine/CollectiveSteps.cpp).
template <typename X, typename Y, i64 OUTER, i64 CHUNK, i64 FULL_CHUNK>
MT_DEVICE void shardSlice(const X *x, Y *y, int rank) {
  for (i64 i = globalThread(); i < OUTER * CHUNK; i += gridStride())
    store(y + i, load(x + i / CHUNK * FULL_CHUNK + i64(rank) * CHUNK + i % CHUNK));
}

/// dst += src: a gradient fan-in.
template <typename S, typename D, i64 N> MT_DEVICE void accumulate(const S *src, D *dst) {
  for (i64 i = globalThread(); i < N; i += gridStride())
    store(dst + i, load(dst + i) + load(src + i));
}

/// y[r, c] = x[r, c] + bias[c] over ROWS·COLS elements; y may alias x.
template <typename X, typename B, typename Y, i64 ROWS, i64 COLS>
MT_DEVICE void addBias(const X *x, const B *bias, Y *y) {
  for (i64 i = globalThread(); i < ROWS * COLS; i += gridStride())
    store(y + i, load(x + i) + load(bias + i % COLS));
}

/// dst[c] += Σ_r src[r, c], each column summed by one thread in row order, as the CPU's column blocks do: the
/// same sum in the same order, whatever the launch.
template <typename S, typename D, i64 ROWS, i64 COLS> MT_DEVICE void sumRows(const S *src, D *dst) {
  typedef typename Compute<D>::type C;
  columnSums<1, ROWS, COLS, C>([&](i64 r, i64 c, C (&acc)[1]) { acc[0] += load(src + r * COLS + c); },
                               [&](i64 c, const C (&sum)[1]) { store(dst + c, load(dst + c) + sum[0]); });
}

} // namespace mt
