//===- VectorMathTest.cpp - Accuracy of the vectorizable exp, tanh, erf -------===//

#include "runtime/cpu/VectorMath.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace megatron::cpu::detail;

namespace {

// Relative error of vexp over the whole finite range is a few float ulps (ulp = 1.19e-7).
TEST(VectorMath, ExpIsAccurateToAFewUlp) {
  double worst = 0;
  for (double x = -87.0; x <= 88.7; x += 0.000731) {
    const double exact = std::exp(double(float(x)));
    worst = std::max(worst, std::fabs(double(vexp(float(x))) - exact) / exact);
  }
  EXPECT_LT(worst, 3e-7);
}

TEST(VectorMath, ExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(vexp(0.0f), 1.0f);
  EXPECT_EQ(vexp(-inf), 0.0f);
  EXPECT_EQ(vexp(-1000.0f), 0.0f);
  EXPECT_EQ(vexp(inf), inf);
  EXPECT_EQ(vexp(89.0f), inf);
  EXPECT_TRUE(std::isnan(vexp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isfinite(vexp(88.72f)));
}

TEST(VectorMath, TanhIsAccurate) {
  double worst = 0;
  for (double x = -12.0; x <= 12.0; x += 0.000377) {
    const double exact = std::tanh(double(float(x)));
    worst = std::max(worst, std::fabs(double(vtanh(float(x))) - exact) / std::max(std::fabs(exact), 1e-30));
  }
  EXPECT_LT(worst, 5e-7);
  EXPECT_EQ(vtanh(0.0f), 0.0f);
  EXPECT_EQ(vtanh(100.0f), 1.0f);
  EXPECT_EQ(vtanh(-100.0f), -1.0f);
}

// A&S 7.1.26 bounds the absolute error of erf by 1.5e-7 (the series below 0.5 is closer); float rounding adds
// a little.
TEST(VectorMath, OnePlusErfIsAccurate) {
  double worst = 0;
  for (double x = -6.0; x <= 6.0; x += 0.000411) {
    const double exact = 1.0 + std::erf(double(float(x)));
    worst = std::max(worst, std::fabs(double(vOnePlusErf(float(x))) - exact));
  }
  EXPECT_LT(worst, 3.5e-7);
}

} // namespace
