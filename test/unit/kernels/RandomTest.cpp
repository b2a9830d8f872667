//===- RandomTest.cpp - Philox4x32-10 and dropout -------------------------------===//

#include "KernelTestUtil.h"

#include "runtime/cpu/Philox.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

// Random123's known-answer vectors (tests/kat_vectors, "philox4x32 10" lines).
TEST(Philox, KnownAnswers) {
  struct Case {
    std::uint32_t counter[4];
    std::uint32_t key[2];
    std::uint32_t expected[4];
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Case &c : cases) {
    std::uint32_t out[4];
    philox4x32x10(c.counter, c.key, out);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(out[i], c.expected[i]) << "word " << i;
  }
}

// randomBits(seed, stream, i) is word i % 4 of the block with counter {i/4, stream} and key seed.
TEST(Philox, ElementIndexToCounter) {
  const std::uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
  for (std::uint64_t index : {0ull, 3ull, 4ull, 1000003ull, (1ull << 34) + 5}) {
    const std::uint64_t block = index / 4;
    const std::uint32_t counter[4] = {std::uint32_t(block), std::uint32_t(block >> 32), std::uint32_t(stream),
                                      std::uint32_t(stream >> 32)};
    const std::uint32_t key[2] = {std::uint32_t(seed), std::uint32_t(seed >> 32)};
    std::uint32_t out[4];
    philox4x32x10(counter, key, out);
    EXPECT_EQ(randomBits(seed, stream, index), out[index % 4]);
    EXPECT_EQ(randomUniform(seed, stream, index), out[index % 4] / 4294967296.0);
  }
}

// The bulk generator (eight blocks at a time with AVX2) agrees with the scalar definition at any start and
// length.
TEST(Philox, RangesMatchElementwise) {
  for (std::uint64_t start : {0ull, 1ull, 2ull, 3ull, 5ull, 1000001ull, (1ull << 33) - 7})
    for (Index count : {0, 1, 3, 4, 31, 32, 33, 100, 257}) {
      std::vector<std::uint32_t> bits(std::size_t(count) + 1, 0xdeadbeef);
      detail::randomBitsRange(77, 5, start, count, bits.data());
      for (Index i = 0; i < count; ++i)
        ASSERT_EQ(bits[i], randomBits(77, 5, start + std::uint64_t(i))) << start << " " << count << " " << i;
      EXPECT_EQ(bits[count], 0xdeadbeefu) << "no write past the end";
    }
}

TEST(Dropout, StreamPacking) {
  EXPECT_EQ(dropoutStream(0, 0, 0), 0u);
  EXPECT_EQ(dropoutStream(3, 2, 1), (3ull << 32) | (2ull << 16) | 1ull);
  EXPECT_NE(dropoutStream(1, 0, 0), dropoutStream(0, 1, 0));
  EXPECT_NE(dropoutStream(0, 1, 0), dropoutStream(0, 0, 1));
}

TEST(Dropout, KeepRateIsOneMinusRate) {
  const Index n = 1 << 20;
  for (double rate : {0.1, 0.5, 0.9}) {
    DropoutConfig config{rate, 1234, 7};
    VecF x(n, 1.0f), y(n);
    dropoutForward(n, config, x.data(), y.data());
    Index kept = 0;
    for (float v : y)
      kept += v != 0.0f;
    const double p = 1.0 - rate, sigma = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(double(kept), n * p, 5 * sigma) << "rate " << rate;
  }
}

// The forward and the backward regenerate one mask; kept elements are scaled by 1/(1 − rate).
TEST(Dropout, ForwardAndBackwardShareTheMask) {
  const Index n = 50001;
  DropoutConfig config{0.3, 99, 3};
  Vec x = randomVec(n, 1, 0.5, 1.5), dy = randomVec(n, 2, 0.5, 1.5), y(n), dx(n);
  dropoutForward(n, config, x.data(), y.data());
  dropoutBackward(n, config, dy.data(), dx.data());
  const double scale = 1.0 / (1.0 - 0.3); // as the kernel computes it
  for (Index i = 0; i < n; ++i) {
    const bool keep = dropoutKeeps(config, std::uint64_t(i));
    ASSERT_EQ(keep, randomUniform(99, 3, std::uint64_t(i)) >= 0.3);
    ASSERT_EQ(y[i], keep ? x[i] * scale : 0.0) << i;
    ASSERT_EQ(dx[i], keep ? dy[i] * scale : 0.0) << i;
  }
  // Another stream gives another mask.
  Vec other(n);
  dropoutForward(n, DropoutConfig{0.3, 99, 4}, x.data(), other.data());
  EXPECT_NE(y, other);
}

TEST(Dropout, FiniteDifferencesWithTheMaskFixed) {
  const Index n = 37;
  DropoutConfig config{0.4, 5, 11};
  Vec x = randomVec(n, 3), r = randomVec(n, 4), y(n), dx = nanVec(n);
  auto loss = [&] {
    dropoutForward(n, config, x.data(), y.data());
    return dot(y, r);
  };
  dropoutBackward(n, config, r.data(), dx.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
}

TEST(Dropout, RateZeroIsIdentityAndRateOneDropsAll) {
  const Index n = 100;
  Vec x = randomVec(n, 5), y(n);
  dropoutForward(n, DropoutConfig{0.0, 1, 1}, x.data(), y.data());
  EXPECT_EQ(x, y);
  dropoutForward(n, DropoutConfig{1.0, 1, 1}, x.data(), y.data());
  EXPECT_EQ(y, Vec(n, 0.0));
}

TEST(Dropout, InPlaceAndThreadCountIndependent) {
  const Index n = 200003;
  DropoutConfig config{0.25, 42, 9};
  VecF x = toFloat(randomVec(n, 6)), one(n), two(n), inPlace = x;
  {
    ThreadScope threads(1);
    dropoutForward(n, config, x.data(), one.data());
  }
  {
    ThreadScope threads(2);
    dropoutForward(n, config, x.data(), two.data());
    dropoutForward(n, config, inPlace.data(), inPlace.data());
  }
  EXPECT_TRUE(sameBits(one, two));
  EXPECT_TRUE(sameBits(one, inPlace));
}

} // namespace
