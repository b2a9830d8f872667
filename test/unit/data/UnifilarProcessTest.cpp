//===- UnifilarProcessTest.cpp - Entropy rates against closed forms --------===//

#include "runtime/data/UnifilarProcess.h"

#include <cmath>
#include <gtest/gtest.h>
#include <stdexcept>

using megatron::data::Transition;
using megatron::data::UnifilarProcess;

namespace {

/// The golden-mean process: no two 1s in a row. From A: 0 (1/2) stays, 1 (1/2) goes to B; from B: 0 returns to A.
/// pi = (2/3, 1/3) and the entropy rate is (2/3) ln 2.
UnifilarProcess goldenMean() { return UnifilarProcess({{{0, 0, 0.5}, {1, 1, 0.5}}, {{0, 0, 1.0}}}, 0); }

TEST(UnifilarProcessTest, GoldenMeanClosedForm) {
  UnifilarProcess p = goldenMean();
  EXPECT_NEAR(p.stationaryDistribution()[0], 2.0 / 3.0, 1e-14);
  EXPECT_NEAR(p.stationaryDistribution()[1], 1.0 / 3.0, 1e-14);
  EXPECT_NEAR(p.entropyRate(), 2.0 / 3.0 * std::log(2.0), 1e-14);
  EXPECT_LT(p.stationaryResidual(), 1e-13);
}

TEST(UnifilarProcessTest, PeriodicChainConverges) {
  // A -> B -> C -> A with a choice of two tokens at A only: period 3, pi uniform, rate ln(2)/3 (a plain power
  // iteration would cycle forever from a non-uniform start; the lazy chain converges).
  UnifilarProcess p({{{0, 1, 0.25}, {1, 1, 0.75}}, {{2, 2, 1.0}}, {{3, 0, 1.0}}}, 1);
  for (double x : p.stationaryDistribution())
    EXPECT_NEAR(x, 1.0 / 3.0, 1e-13);
  double h = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  EXPECT_NEAR(p.entropyRate(), h / 3.0, 1e-13);
}

TEST(UnifilarProcessTest, ExpectedLossOfPrefix) {
  UnifilarProcess p = goldenMean();
  // From A: state 1 is A or B with 1/2 each, so the first prediction costs ln2 / 2 on average; state 2 from
  // (1/2, 1/2) is (3/4, 1/4).
  EXPECT_NEAR(p.expectedLossOfPrefix(0, 1), 0.5 * std::log(2.0), 1e-15);
  EXPECT_NEAR(p.expectedLossOfPrefix(0, 2), (0.5 + 0.75) * std::log(2.0) / 2, 1e-15);
  // Long prefixes approach the rate.
  EXPECT_NEAR(p.expectedLossOfPrefix(0, 100000), p.entropyRate(), 1e-5);
  EXPECT_THROW(p.expectedLossOfPrefix(0, 0), std::invalid_argument);
}

TEST(UnifilarProcessTest, ChooseFollowsCumulativeProbabilities) {
  UnifilarProcess p = goldenMean();
  EXPECT_EQ(p.choose(0, 0.0).token, 0);
  EXPECT_EQ(p.choose(0, 0.4999).token, 0);
  EXPECT_EQ(p.choose(0, 0.5).token, 1);
  EXPECT_EQ(p.choose(0, 0.9999999).token, 1);
  EXPECT_EQ(p.choose(1, 0.7).token, 0);
  ASSERT_NE(p.find(0, 1), nullptr);
  EXPECT_EQ(p.find(0, 1)->next, 1);
  EXPECT_EQ(p.find(1, 1), nullptr);
}

TEST(UnifilarProcessTest, RejectsMalformedProcesses) {
  // Two arcs with the same token: not unifilar.
  EXPECT_THROW(UnifilarProcess({{{0, 0, 0.5}, {0, 1, 0.5}}, {{0, 0, 1.0}}}, 0), std::invalid_argument);
  // Probabilities that do not sum to 1.
  EXPECT_THROW(UnifilarProcess({{{0, 0, 0.5}}}, 0), std::invalid_argument);
  // A zero probability.
  EXPECT_THROW(UnifilarProcess({{{0, 0, 1.0}, {1, 0, 0.0}}}, 0), std::invalid_argument);
  // A state that does not exist.
  EXPECT_THROW(UnifilarProcess({{{0, 3, 1.0}}}, 0), std::invalid_argument);
  // A state the start cannot reach, and a transient state that never returns.
  EXPECT_THROW(UnifilarProcess({{{0, 0, 1.0}}, {{0, 0, 1.0}}}, 0), std::invalid_argument);
  EXPECT_THROW(UnifilarProcess({{{0, 1, 1.0}}, {{0, 1, 1.0}}}, 0), std::invalid_argument);
  // No transitions, no states, a bad start.
  EXPECT_THROW(UnifilarProcess({{}}, 0), std::invalid_argument);
  EXPECT_THROW(UnifilarProcess({}, 0), std::invalid_argument);
  EXPECT_THROW(UnifilarProcess({{{0, 0, 1.0}}}, 1), std::invalid_argument);
}

} // namespace
