//===- LossScalerTest.cpp - fp16's loss scaling against Megatron's DynamicGradScaler -===//
//
// The expected scales are worked by hand from megatron/core/optimizer/grad_scaler.py: an overflow decrements the
// hysteresis tracker and halves the scale once it reaches 0 (and at every later overflow until a growth restores
// it), `window` clean steps in a row double it; the minimum bounds the halving.
//
//===----------------------------------------------------------------------===//

#include "runtime/train/LossScaler.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using megatron::train::LossScaleOptions;
using megatron::train::LossScaler;

namespace {

LossScaleOptions dynamic(double initial, double minimum, int64_t window, int64_t hysteresis) {
  LossScaleOptions o;
  o.initial = initial;
  o.minimum = minimum;
  o.window = window;
  o.hysteresis = hysteresis;
  return o;
}

TEST(LossScalerTest, HysteresisThenHalvingAtEveryOverflow) {
  LossScaler s(dynamic(1024, 1, 1000, 2));
  EXPECT_TRUE(s.dynamic());
  s.update(true);
  EXPECT_EQ(s.scale(), 1024); // the first overflow only uses up hysteresis
  s.update(true);
  EXPECT_EQ(s.scale(), 512);
  s.update(true);
  EXPECT_EQ(s.scale(), 256); // the tracker stays at or below 0: every further overflow halves
  s.update(false);
  s.update(true);
  EXPECT_EQ(s.scale(), 128); // a clean step does not restore hysteresis; only a growth does
}

TEST(LossScalerTest, GrowthAfterAWindowOfCleanStepsRestoresHysteresis) {
  LossScaler s(dynamic(8, 1, 3, 2));
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 8);
  s.update(false);
  EXPECT_EQ(s.scale(), 16);
  s.update(false);
  s.update(true); // an overflow resets the growth count: 3 more clean steps are needed
  EXPECT_EQ(s.scale(), 16);
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 16);
  s.update(false);
  EXPECT_EQ(s.scale(), 32);
}

TEST(LossScalerTest, NeverBelowTheMinimumAndConstantStaysPut) {
  LossScaler s(dynamic(4, 2, 1000, 1));
  for (int i = 0; i < 5; ++i)
    s.update(true);
  EXPECT_EQ(s.scale(), 2);
  LossScaleOptions o;
  o.constant = 128;
  LossScaler c(o);
  EXPECT_FALSE(c.dynamic());
  c.update(true);
  c.update(false);
  EXPECT_EQ(c.scale(), 128);
}

TEST(LossScalerTest, StateRoundTripsAndBadStateIsRefused) {
  LossScaler a(dynamic(64, 1, 2, 2));
  a.update(true);
  a.update(false);
  LossScaler b(dynamic(4096, 1, 2, 2));
  ASSERT_EQ(b.restore(a.state()), "");
  EXPECT_EQ(b.scale(), 64);
  a.update(false);
  b.update(false);
  EXPECT_EQ(a.scale(), b.scale()); // the growth tracker came along: both double now
  EXPECT_EQ(b.scale(), 128);
  EXPECT_NE(b.restore(nlohmann::json{{"scale", -1}, {"growth_tracker", 0}, {"hysteresis_tracker", 2}}), "");
  EXPECT_NE(b.restore(nlohmann::json::array()), "");
}

} // namespace
