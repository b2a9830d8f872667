//===- LossTest.cpp - Masked cross-entropy -------------------------------------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

// −log softmax(z)[label], averaged with the mask's weights, written from the definition.
double referenceLoss(const CrossEntropyShape &s, const Vec &z, const std::vector<std::int32_t> &labels,
                     const Vec *mask) {
  double num = 0, den = 0;
  for (Index r = 0; r < s.rows; ++r) {
    const double m = mask ? (*mask)[r] : 1.0;
    if (m == 0)
      continue;
    double sum = 0;
    for (Index j = 0; j < s.vocab; ++j)
      sum += std::exp(z[r * s.vocab + j]);
    num += m * -std::log(std::exp(z[r * s.vocab + labels[r]]) / sum);
    den += m;
  }
  return den == 0 ? 0 : num / den;
}

TEST(CrossEntropy, ForwardMatchesDefinition) {
  CrossEntropyShape s{6, 11};
  Vec z = randomVec(s.rows * s.vocab, 1, -3, 3), mask = {1, 0, 0.5, 1, 0, 2}, lse(s.rows);
  auto labels = randomIds(s.rows, 2, std::int32_t(s.vocab));
  double loss = NAN;
  ASSERT_TRUE(crossEntropyForward(s, z.data(), labels.data(), mask.data(), &loss, lse.data()).ok());
  EXPECT_NEAR(loss, referenceLoss(s, z, labels, &mask), 1e-14);
  ASSERT_TRUE(crossEntropyForward<double>(s, z.data(), labels.data(), nullptr, &loss, lse.data()).ok());
  EXPECT_NEAR(loss, referenceLoss(s, z, labels, nullptr), 1e-14);
  for (Index r = 0; r < s.rows; ++r) {
    double sum = 0;
    for (Index j = 0; j < s.vocab; ++j)
      sum += std::exp(z[r * s.vocab + j]);
    EXPECT_NEAR(lse[r], std::log(sum), 1e-14);
  }
}

// Rows longer than the kernel's 2048-logit blocks, with the maximum in a later block (the running sum rescales).
TEST(CrossEntropy, LongRowsMatchDefinition) {
  CrossEntropyShape s{3, 7000};
  Vec z = randomVec(s.rows * s.vocab, 1, -3, 3), lse(s.rows);
  z[0 * s.vocab + 6500] = 9;
  z[1 * s.vocab + 2100] = 7;
  z[2 * s.vocab + 10] = 8;
  std::vector<std::int32_t> labels = {6500, 3, 6999};
  double loss;
  ASSERT_TRUE(crossEntropyForward<double>(s, z.data(), labels.data(), nullptr, &loss, lse.data()).ok());
  EXPECT_NEAR(loss, referenceLoss(s, z, labels, nullptr), 1e-13);
  VecF zf = toFloat(z), lsef(s.rows);
  float lossf;
  ASSERT_TRUE(crossEntropyForward<float>(s, zf.data(), labels.data(), nullptr, &lossf, lsef.data()).ok());
  EXPECT_NEAR(lossf, loss, kFloatTol * loss);
  EXPECT_FLOAT_AGREES(lsef, lse);
}

// Large logits must not overflow: the max is subtracted before exp.
TEST(CrossEntropy, StableForLargeLogits) {
  CrossEntropyShape s{2, 3};
  VecF z = {1000.0f, 999.0f, 998.0f, -1000.0f, -1001.0f, -1002.0f}, lse(2);
  std::vector<std::int32_t> labels = {0, 2};
  float loss = NAN;
  ASSERT_TRUE(crossEntropyForward<float>(s, z.data(), labels.data(), nullptr, &loss, lse.data()).ok());
  const double l0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0)), l2 = 2 + l0;
  // lse ≈ ±1000 is saved in float (ulp 6e-5), so lse − logit carries that absolute error, as in PyTorch.
  EXPECT_TRUE(std::isfinite(lse[0]) && std::isfinite(lse[1]));
  EXPECT_NEAR(loss, (l0 + l2) / 2, 1e-4);
}

TEST(CrossEntropy, FiniteDifferences) {
  CrossEntropyShape s{5, 7};
  auto labels = randomIds(s.rows, 1, std::int32_t(s.vocab));
  Vec mask = {1, 0, 1, 0.5, 1};
  const Vec *masks[] = {&mask, nullptr};
  for (const Vec *m : masks) {
    Vec z = randomVec(s.rows * s.vocab, 2, -2, 2), lse(s.rows);
    const double dloss = 1.7;
    auto loss = [&] {
      double l;
      EXPECT_TRUE(crossEntropyForward(s, z.data(), labels.data(), m ? m->data() : nullptr, &l, lse.data()).ok());
      return l * dloss;
    };
    loss();
    Vec dz = nanVec(z.size());
    ASSERT_TRUE(
        crossEntropyBackward(s, z.data(), labels.data(), m ? m->data() : nullptr, lse.data(), dloss, dz.data()).ok());
    EXPECT_GRAD_NEAR(dz, numericGrad(z, loss));
  }
}

TEST(CrossEntropy, EmptyMaskGivesZeroLossAndGradients) {
  CrossEntropyShape s{3, 4};
  Vec z = randomVec(s.rows * s.vocab, 1), mask(s.rows, 0.0), lse(s.rows), dz = nanVec(z.size());
  std::vector<std::int32_t> labels = {-1, 99, 2}; // never read: every row is masked out
  double loss = NAN;
  ASSERT_TRUE(crossEntropyForward(s, z.data(), labels.data(), mask.data(), &loss, lse.data()).ok());
  EXPECT_EQ(loss, 0.0);
  ASSERT_TRUE(crossEntropyBackward(s, z.data(), labels.data(), mask.data(), lse.data(), 1.0, dz.data()).ok());
  EXPECT_EQ(dz, Vec(z.size(), 0.0));
}

// Labels out of range fail where they are read (mask non-zero or no mask); Megatron's BERT labels are −1 where
// the loss mask is 0, which is fine.
TEST(CrossEntropy, OutOfRangeLabelsAreReported) {
  CrossEntropyShape s{4, 5};
  Vec z = randomVec(s.rows * s.vocab, 1), lse(s.rows), dz(z.size(), 3.0), mask = {1, 0, 1, 1};
  std::vector<std::int32_t> labels = {0, -1, 5, -7};
  double loss = 42;
  IndexStatus status = crossEntropyForward(s, z.data(), labels.data(), mask.data(), &loss, lse.data());
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.position, 2);
  EXPECT_EQ(status.value, 5);
  EXPECT_EQ(status.limit, 5);
  EXPECT_EQ(loss, 42);
  status = crossEntropyBackward(s, z.data(), labels.data(), mask.data(), lse.data(), 1.0, dz.data());
  EXPECT_EQ(status.position, 2);
  EXPECT_EQ(dz, Vec(z.size(), 3.0));
  status = crossEntropyForward<double>(s, z.data(), labels.data(), nullptr, &loss, lse.data());
  EXPECT_EQ(status.position, 1);
  EXPECT_EQ(status.value, -1);
  labels = {0, -1, 4, 3};
  EXPECT_TRUE(crossEntropyForward(s, z.data(), labels.data(), mask.data(), &loss, lse.data()).ok());
}

TEST(CrossEntropy, FloatAgreesWithDoubleAndIsDeterministic) {
  CrossEntropyShape s{64, 1000};
  Vec z = randomVec(s.rows * s.vocab, 1, -8, 8), mask = randomVec(s.rows, 2, 0, 1), lse(s.rows), dz(z.size());
  auto labels = randomIds(s.rows, 3, std::int32_t(s.vocab));
  double loss;
  ASSERT_TRUE(crossEntropyForward(s, z.data(), labels.data(), mask.data(), &loss, lse.data()).ok());
  ASSERT_TRUE(crossEntropyBackward(s, z.data(), labels.data(), mask.data(), lse.data(), 0.5, dz.data()).ok());
  ThreadScope threads(2);
  VecF zf = toFloat(z), maskf = toFloat(mask);
  float lossf[2];
  VecF lsef[2], dzf[2];
  for (int run = 0; run < 2; ++run) {
    lsef[run].resize(s.rows);
    dzf[run].resize(z.size());
    ASSERT_TRUE(crossEntropyForward(s, zf.data(), labels.data(), maskf.data(), &lossf[run], lsef[run].data()).ok());
    ASSERT_TRUE(crossEntropyBackward(s, zf.data(), labels.data(), maskf.data(), lsef[run].data(), 0.5f,
                                     dzf[run].data())
                    .ok());
  }
  EXPECT_NEAR(lossf[0], loss, kFloatTol * std::fabs(loss));
  EXPECT_FLOAT_AGREES(lsef[0], lse);
  EXPECT_FLOAT_AGREES(dzf[0], dz);
  EXPECT_EQ(lossf[0], lossf[1]);
  EXPECT_TRUE(sameBits(dzf[0], dzf[1]));
}

} // namespace
