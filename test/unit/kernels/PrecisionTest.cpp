//===- PrecisionTest.cpp - bf16 / fp16 rounding against independent references -===//
//
// fp16: the compiler's own float -> _Float16 conversion (IEEE round to nearest even, with subnormals and overflow
// to infinity). bf16: the nearest of the two bf16 neighbours of x, found by truncation and compared in double,
// ties to the even one. Both over special values and a million random bit patterns.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <gtest/gtest.h>
#include <limits>
#include <random>
#include <vector>

using namespace megatron::cpu;

namespace {

uint32_t bitsOf(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
float fromBits(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

/// The bf16 value nearest x, ties to even: candidates are x truncated to bf16 and the next bf16 away from zero.
float nearestBf16(float x) {
  uint32_t low = bitsOf(x) & 0xFFFF0000u, high = low + 0x10000u;
  // Past the largest finite value the next "value" is 2^128 in magnitude, which IEEE rounding compares against.
  double highValue = (high & 0x7FFFFFFFu) == 0x7F800000u ? std::copysign(std::ldexp(1.0, 128), x) : fromBits(high);
  double dLow = std::fabs(double(fromBits(low)) - double(x)), dHigh = std::fabs(highValue - double(x));
  if (dLow < dHigh)
    return fromBits(low);
  if (dHigh < dLow)
    return fromBits(high);
  return (low >> 16 & 1u) ? fromBits(high) : fromBits(low);
}

std::vector<float> testValues() {
  std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, 3e-8f,
                               5.96e-8f, 2.98e-8f, 2.9802322e-08f, 6.1035156e-05f, 6.1e-05f, 1.0009765625f,
                               1.00048828125f, 1.00146484375f, 3.4e38f, -3.4e38f, 1e-40f,
                               std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min()};
  std::mt19937 gen(7);
  for (int i = 0; i < 1000000; ++i) {
    float x = fromBits(static_cast<uint32_t>(gen()));
    if (!std::isnan(x))
      values.push_back(x);
  }
  for (int i = 0; i < 100000; ++i) // the range activations live in
    values.push_back(std::ldexp(static_cast<float>(gen()) / 4294967296.0f, static_cast<int>(gen() % 40) - 30));
  return values;
}

TEST(PrecisionTest, Fp16MatchesTheCompilersConversion) {
  for (float x : testValues()) {
    float expected = static_cast<float>(static_cast<_Float16>(x));
    float got = roundToF16(x);
    ASSERT_EQ(bitsOf(got), bitsOf(expected)) << "x = " << x << " (bits " << std::hex << bitsOf(x) << ")";
  }
}

TEST(PrecisionTest, ArraysRoundAsTheScalarFunctions) {
  std::vector<float> values = testValues(), f16 = values, bf16 = values;
  roundToF16(static_cast<Index>(f16.size()), f16.data());
  roundToBf16(static_cast<Index>(bf16.size()), bf16.data());
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(bitsOf(f16[i]), bitsOf(roundToF16(values[i]))) << "x = " << values[i];
    ASSERT_EQ(bitsOf(bf16[i]), bitsOf(roundToBf16(values[i]))) << "x = " << values[i];
  }
}

TEST(PrecisionTest, Bf16IsTheNearestWithTiesToEven) {
  for (float x : testValues()) {
    float got = roundToBf16(x);
    ASSERT_EQ(bitsOf(got), bitsOf(nearestBf16(x))) << "x = " << x << " (bits " << std::hex << bitsOf(x) << ")";
  }
  // Rounding past bf16's largest finite value gives infinity.
  EXPECT_TRUE(std::isinf(roundToBf16(3.4028235e38f)));
}

TEST(PrecisionTest, NaNStaysNaNAndArraysRoundInPlace) {
  EXPECT_TRUE(std::isnan(roundToBf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(roundToF16(fromBits(0x7F800001u)))); // a signalling NaN whose payload rounding would lose
  EXPECT_TRUE(std::isnan(roundToBf16(fromBits(0x7F800001u))));
  std::vector<float> x = {1.00048828125f, 70000.0f, 0.1f};
  roundToF16(static_cast<Index>(x.size()), x.data());
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_TRUE(std::isinf(x[1]));
  EXPECT_EQ(x[2], static_cast<float>(static_cast<_Float16>(0.1f)));
  std::vector<float> y = {1.00390625f, 1.01171875f};
  roundToBf16(2, y.data());
  EXPECT_EQ(y[0], 1.0f);       // a tie rounds to the even 1.0
  EXPECT_EQ(y[1], 1.015625f);  // a tie rounds to the even 1.015625
}

} // namespace
