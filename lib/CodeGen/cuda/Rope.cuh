//===- Rope.cuh - Rotary position embedding, forward and backward -------------===//
//
// runtime/cpu/Rope.cpp's semantics on [batch, seq, heads, D]: channel pairs (i, i + R/2), i < R/2, rotate by
// p·base^(−2i/R) (DIRECTION −1 in the backward: the transpose of a rotation); channels >= R pass through. The
// angle, its cosine and sine are computed in double and then rounded, as on the CPU, so both backends use the
// same rotation. One thread per pair owns both of its channels, so y may alias x.
//
//===----------------------------------------------------------------------===//

namespace mt {

template <typename X, typename Y, i64 BATCH, i64 SEQ, i64 HEADS, i64 D, i64 R, int DIRECTION>
MT_DEVICE void rope(const X *x, Y *y, double base) {
  typedef typename Compute<X>::type C;
  constexpr i64 HALF = R / 2;
  for (i64 i = globalThread(); i < BATCH * SEQ * HEADS * D; i += gridStride()) {
    const i64 c = i % D;
    if (c < HALF) {
      const i64 p = i / (HEADS * D) % SEQ;
      const double angle = double(p) * pow(base, -2.0 * double(c) / double(R));
      const C cs = C(cos(angle)), sn = C(DIRECTION * sin(angle));
      const C a = load(x + i), b = load(x + i + HALF);
      store(y + i, a * cs - b * sn);
      store(y + i + HALF, b * cs + a * sn);
    } else if (c >= R) {
      store(y + i, C(load(x + i)));
    }
  }
}

} // namespace mt
