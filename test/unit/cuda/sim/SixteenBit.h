//===- SixteenBit.h - cuda_bf16.h's and cuda_fp16.h's storage types on the host ---*- C++ -*-===//
//
// The host simulator's __nv_bfloat16 and __half: two bytes of storage each, so that a simulated kernel indexes
// 16-bit buffers with the device's element size, and the conversions the generated kernels use, written out
// exactly: round to nearest, ties to even (what cvt.rn does on the GPU), fp16 with subnormals and overflow to
// infinity, NaN to CUDA's canonical quiet NaN (0x7fff). Only the functions the kernels call exist, so a kernel
// that starts using another intrinsic fails to compile here instead of running something unchecked. Written by
// hand rather than taken from the toolkit's headers so that the simulator builds and runs without CUDA; the
// simulator's tests check these against cpu::roundToBf16 / roundToF16 (runtime/cpu/Precision.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIM_SIXTEENBIT_H
#define MEGATRON_TEST_UNIT_CUDA_SIM_SIXTEENBIT_H

#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
  uint16_t x;
};
struct __half {
  uint16_t x;
};

inline uint32_t mt_sim_float_bits(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}
inline float mt_sim_bits_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

inline float __bfloat162float(__nv_bfloat16 h) { return mt_sim_bits_float(uint32_t(h.x) << 16); }

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  const uint32_t bits = mt_sim_float_bits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return __nv_bfloat16{0x7fff};
  // Adding 0x7fff plus the kept part's lowest bit rounds the dropped 16 bits to nearest, ties to even; a carry
  // moves into the exponent, up to infinity.
  return __nv_bfloat16{uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16)};
}

inline float __half2float(__half h) {
  const uint32_t sign = uint32_t(h.x & 0x8000u) << 16, exponent = (h.x >> 10) & 0x1fu, mantissa = h.x & 0x3ffu;
  if (exponent == 0) { // zero or subnormal: mantissa · 2^-24, exact in float
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
    return mt_sim_bits_float(mt_sim_float_bits(magnitude) | sign);
  }
  if (exponent == 31)
    return mt_sim_bits_float(sign | 0x7f800000u | (mantissa << 13));
  return mt_sim_bits_float(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

inline __half __float2half_rn(float f) {
  const uint32_t bits = mt_sim_float_bits(f);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u)
    return __half{0x7fff};
  if (magnitude >= 0x477ff000u) // 65520 and above: halfway past 65504 or more, rounds (to even) to infinity
    return __half{uint16_t(sign | 0x7c00u)};
  const uint32_t exponent = magnitude >> 23, mantissa = (magnitude & 0x7fffffu) | 0x800000u;
  uint32_t value, rest, half;
  if (exponent >= 113) { // normal in fp16 (>= 2^-14): keep 10 of the 23 mantissa bits
    value = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3ffu);
    rest = magnitude & 0x1fffu;
    half = 0x1000u;
  } else if (exponent >= 102) { // subnormal in fp16: mantissa · 2^(exponent - 150) in units of 2^-24
    const uint32_t shift = 126 - exponent;
    value = mantissa >> shift;
    rest = mantissa & ((1u << shift) - 1u);
    half = 1u << (shift - 1);
  } else { // below 2^-25 (or exactly zero): rounds to zero
    return __half{sign};
  }
  if (rest > half || (rest == half && (value & 1u)))
    ++value; // a carry out of the mantissa correctly increments the exponent
  return __half{uint16_t(sign | value)};
}

// The raw bits, as the tensor-core kernels pack pairs of 16-bit values into the 32-bit registers mma takes.
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.x; }
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { return __nv_bfloat16{bits}; }
inline __half __ushort_as_half(unsigned short bits) { return __half{bits}; }

#endif // MEGATRON_TEST_UNIT_CUDA_SIM_SIXTEENBIT_H
