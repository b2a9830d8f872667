//===- PositionBias.cuh - T5's relative position bias, forward and backward --===//
//
// bias[h, q, k] = table[bucket(k − q), h] with table [NUM_BUCKETS, H]. The buckets depend only on the shape and
// the attributes, so the generator computes them on the host with the CPU's function
// (megatron/Model/RelativePositionBucket.h) and bakes them in: BUCKETS[k − q + SQ − 1], a __device__ array the
// wrapper defines. The counterparts of relativePositionBiasForward / Backward in runtime/cpu/Embeddings.cpp.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// Grid-stride over H·SQ·SK.
template <typename T, typename Y, i64 H, i64 SQ, i64 SK>
MT_DEVICE void relativePositionBiasForward(const int *buckets, const T *table, Y *bias) {
  for (i64 i = globalThread(); i < H * SQ * SK; i += gridStride()) {
    const i64 h = i / (SQ * SK), q = i / SK % SQ, k = i % SK;
    store(bias + i, load(table + i64(buckets[k - q + SQ - 1]) * H + h));
  }
}

/// dtable[bucket, h] += Σ dbias[h, q, k] over the (q, k) of that bucket, in the CPU's order (q, then k): one
/// thread per table element, so the sum is the CPU's, bit for bit in f32.
template <typename D, typename G, i64 H, i64 SQ, i64 SK, i64 NUM_BUCKETS>
MT_DEVICE void relativePositionBiasBackward(const int *buckets, const D *dbias, G *dtable) {
  typedef typename Compute<G>::type C;
  for (i64 i = globalThread(); i < NUM_BUCKETS * H; i += gridStride()) {
    const i64 bucket = i / H, h = i % H;
    C acc = 0;
    for (i64 q = 0; q < SQ; ++q)
      for (i64 k = 0; k < SK; ++k)
        if (buckets[k - q + SQ - 1] == bucket)
          acc += C(load(dbias + (h * SQ + q) * SK + k));
    store(dtable + i, load(dtable + i) + acc);
  }
}

} // namespace mt
