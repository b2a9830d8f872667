//===- Precision.cpp - bf16 and fp16 rounding for mixed-precision emulation -===//
//
// The CPU backend runs 16-bit plans on f32 storage: every kernel computes in f32 as a GPU kernel does, and the
// engine rounds each 16-bit output to the nearest representable value, ties to even, as a GPU kernel's store does.
// So the numbers a bf16/fp16 run sees are those of the real formats, and CI tests mixed precision without a GPU.
// Both are bit operations on the IEEE layout, checked against the compiler's _Float16 conversion and a
// nearest-value search in test/unit/kernels/PrecisionTest.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace megatron::cpu {

namespace {

uint32_t bitsOf(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

float fromBits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

} // namespace

float roundToBf16(float x) {
  uint32_t bits = bitsOf(x);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) // NaN: keep it a (quiet) NaN; rounding could carry it into infinity
    return fromBits(bits | 0x00400000u);
  // Round to nearest, ties to even, on the 16 low bits that bf16 drops; a carry into the exponent is right
  // (it rounds up to the next binade, or to infinity above bf16's largest finite value).
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return fromBits(bits & 0xFFFF0000u);
}

float roundToF16(float x) {
  // IEEE binary16: 5 exponent bits (bias 15), 10 fraction bits; normal numbers from 2^-14, subnormals down to
  // 2^-24, the largest finite 65504. Rounding to a multiple of the spacing at x's magnitude, ties to even.
  uint32_t bits = bitsOf(x);
  uint32_t sign = bits & 0x80000000u, magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) // infinity stays, NaN stays a NaN
    return magnitude > 0x7F800000u ? fromBits(bits | 0x00400000u) : x;
  int exponent = static_cast<int>(magnitude >> 23) - 127;
  // Bits of the f32 significand below f16's last place: 13 for normal f16 numbers, more for subnormals.
  int dropped = exponent >= -14 ? 13 : 13 + (-14 - exponent);
  if (dropped > 24) // below half the smallest subnormal (2^-25): rounds to zero
    return fromBits(sign);
  uint32_t significand = magnitude >> 23 ? (magnitude & 0x7FFFFFu) | 0x800000u : magnitude & 0x7FFFFFu;
  uint32_t half = 1u << (dropped - 1), mask = (1u << dropped) - 1u;
  uint32_t rest = significand & mask;
  significand &= ~mask;
  if (rest > half || (rest == half && (significand >> dropped & 1u)))
    significand += 1u << dropped;
  // Rebuild the f32 value from the rounded significand (it may have carried into the next binade).
  float value = static_cast<float>(significand) * fromBits(static_cast<uint32_t>(exponent - 23 + 127) << 23);
  if (value > 65504.0f)
    value = fromBits(0x7F800000u); // overflow: infinity, as a GPU's f16 store gives
  return sign ? -value : value;
}

void roundToBf16(Index n, float *x) {
#pragma omp parallel for schedule(static) if (detail::worthParallel(n))
  for (Index i = 0; i < n; ++i)
    x[i] = roundToBf16(x[i]);
}

namespace {
// Arrays go through the compiler's float -> _Float16 conversion, which the x86-64-v3/v4 clones turn into F16C's
// vcvtps2ph (four times faster than the bit operations above; the test checks that both agree bit for bit).
MEGATRON_CPU_CLONES void roundToF16Block(Index n, float *x) {
  for (Index i = 0; i < n; ++i)
    x[i] = static_cast<float>(static_cast<_Float16>(x[i]));
}
} // namespace

void roundToF16(Index n, float *x) {
  constexpr Index kBlock = 4096;
#pragma omp parallel for schedule(static) if (detail::worthParallel(n))
  for (Index b = 0; b < n; b += kBlock)
    roundToF16Block(std::min(kBlock, n - b), x + b);
}

} // namespace megatron::cpu
