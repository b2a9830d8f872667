//===- Mma.cuh - One warp's 16x8x16 tensor-core product, and 16-bit register pairs -===//
//
// D[16][8] += A[16][16]·B[16][8] for one warp, with bf16 or f16 inputs and f32 accumulation: PTX's
// mma.sync.aligned.m16n8k16.row.col. Fragments are the PTX ISA's: lane = 4·group + quad holds
//   A: a[0] = (row group,   k 2quad, 2quad+1)   a[1] = (row group+8, k 2quad, 2quad+1)
//      a[2] = (row group,   k 2quad+8, +9)      a[3] = (row group+8, k 2quad+8, +9)
//   B: b[0] = (k 2quad, 2quad+1, column group)  b[1] = (k 2quad+8, +9, column group)
//   D: d[0], d[1] = (row group, columns 2quad, 2quad+1)   d[2], d[3] = (row group+8, the same columns)
// each 32-bit register holding two 16-bit values, the lower index in the lower half.
//
// With MT_SIMULATE (the host simulator) the product is computed from the same fragments through the warp's
// shuffles: every lane gathers the A rows and B columns its four outputs need from the lanes that hold them, so a
// kernel's fragment bookkeeping is checked exactly as the tensor core would read it. The products of 16-bit values
// are exact in f32; the simulator adds them in k order, the tensor core in its own order, so results agree to f32
// rounding, not bit for bit.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// The 16 bits of v rounded to T (bf16 or f16), and back.
MT_DEVICE unsigned short bitsOf(float v, const __nv_bfloat16 *) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
MT_DEVICE unsigned short bitsOf(float v, const __half *) { return __half_as_ushort(__float2half_rn(v)); }
MT_DEVICE float valueOf(unsigned short bits, const __nv_bfloat16 *) {
  return __bfloat162float(__ushort_as_bfloat16(bits));
}
MT_DEVICE float valueOf(unsigned short bits, const __half *) { return __half2float(__ushort_as_half(bits)); }

/// Two values as one register: lo in the lower half.
template <typename T> MT_DEVICE u32 packPair(float lo, float hi) {
  return u32(bitsOf(lo, (const T *)0)) | (u32(bitsOf(hi, (const T *)0)) << 16);
}
/// Two raw 16-bit values (already of type T) as one register.
MT_DEVICE u32 joinPair(unsigned short lo, unsigned short hi) { return u32(lo) | (u32(hi) << 16); }

#if defined(MT_SIMULATE)

template <typename T> MT_DEVICE void mma16816(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2]) {
  const int lane = threadIdx.x % 32, group = lane / 4, quad = lane % 4;
  auto lo = [](u32 r) { return valueOf((unsigned short)(r & 0xffffu), (const T *)0); };
  auto hi = [](u32 r) { return valueOf((unsigned short)(r >> 16), (const T *)0); };
  float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  // Lanes 4·group + s hold row group's (and group+8's) k = 2s, 2s+1, 2s+8, 2s+9; lanes 4·n + s hold column n's.
  for (int s = 0; s < 4; ++s) {
    // One shuffle per line: the simulator tells shuffles apart by their call site.
    const u32 a0 = __shfl_sync(0xffffffffu, a[0], 4 * group + s);
    const u32 a1 = __shfl_sync(0xffffffffu, a[1], 4 * group + s);
    const u32 a2 = __shfl_sync(0xffffffffu, a[2], 4 * group + s);
    const u32 a3 = __shfl_sync(0xffffffffu, a[3], 4 * group + s);
    const u32 b00 = __shfl_sync(0xffffffffu, b[0], 4 * (2 * quad) + s);
    const u32 b01 = __shfl_sync(0xffffffffu, b[1], 4 * (2 * quad) + s);
    const u32 b10 = __shfl_sync(0xffffffffu, b[0], 4 * (2 * quad + 1) + s);
    const u32 b11 = __shfl_sync(0xffffffffu, b[1], 4 * (2 * quad + 1) + s);
    // k = 2s, 2s+1 (a0/a1, b.0) and 2s+8, 2s+9 (a2/a3, b.1)
    sum[0] += lo(a0) * lo(b00) + hi(a0) * hi(b00) + lo(a2) * lo(b01) + hi(a2) * hi(b01);
    sum[1] += lo(a0) * lo(b10) + hi(a0) * hi(b10) + lo(a2) * lo(b11) + hi(a2) * hi(b11);
    sum[2] += lo(a1) * lo(b00) + hi(a1) * hi(b00) + lo(a3) * lo(b01) + hi(a3) * hi(b01);
    sum[3] += lo(a1) * lo(b10) + hi(a1) * hi(b10) + lo(a3) * lo(b11) + hi(a3) * hi(b11);
  }
  for (int i = 0; i < 4; ++i)
    d[i] += sum[i];
}

#else

template <typename T> MT_DEVICE void mma16816(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2]);

template <> MT_DEVICE void mma16816<__nv_bfloat16>(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <> MT_DEVICE void mma16816<__half>(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#endif

} // namespace mt
