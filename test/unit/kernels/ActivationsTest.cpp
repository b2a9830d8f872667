//===- ActivationsTest.cpp - GeLU, SwiGLU and the elementwise kernels ---------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

double geluReference(double x, GeluApproximation approx) {
  if (approx == GeluApproximation::Tanh)
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}

class Gelu : public ::testing::TestWithParam<GeluApproximation> {};

TEST_P(Gelu, ForwardMatchesFormula) {
  const Index n = 301;
  Vec x = randomVec(n, 1, -6, 6), y(n);
  geluForward(n, GetParam(), x.data(), y.data());
  Vec ref(n);
  for (Index i = 0; i < n; ++i)
    ref[i] = geluReference(x[i], GetParam());
  EXPECT_LT(scaledError(y, ref), 1e-15);
}

TEST_P(Gelu, FiniteDifferences) {
  const Index n = 64;
  Vec x = randomVec(n, 2, -4, 4), r = randomVec(n, 3), y(n), dx = nanVec(n);
  auto loss = [&] {
    geluForward(n, GetParam(), x.data(), y.data());
    return dot(y, r);
  };
  geluBackward(n, GetParam(), x.data(), r.data(), dx.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
}

TEST_P(Gelu, FloatAgreesWithDouble) {
  const Index n = 4099;
  Vec x = randomVec(n, 4, -8, 8), dy = randomVec(n, 5), y(n), dx(n);
  VecF xf = toFloat(x), dyf = toFloat(dy), yf(n), dxf(n);
  geluForward(n, GetParam(), x.data(), y.data());
  geluForward(n, GetParam(), xf.data(), yf.data());
  geluBackward(n, GetParam(), x.data(), dy.data(), dx.data());
  geluBackward(n, GetParam(), xf.data(), dyf.data(), dxf.data());
  EXPECT_FLOAT_AGREES(yf, y);
  EXPECT_FLOAT_AGREES(dxf, dx);
}

TEST_P(Gelu, DeterministicWithTwoThreads) {
  ThreadScope threads(2);
  const Index n = 100000;
  VecF x = toFloat(randomVec(n, 6, -5, 5)), dy = toFloat(randomVec(n, 7)), a(n), b(n), da(n), db(n);
  geluForward(n, GetParam(), x.data(), a.data());
  geluForward(n, GetParam(), x.data(), b.data());
  geluBackward(n, GetParam(), x.data(), dy.data(), da.data());
  geluBackward(n, GetParam(), x.data(), dy.data(), db.data());
  EXPECT_TRUE(sameBits(a, b));
  EXPECT_TRUE(sameBits(da, db));
}

INSTANTIATE_TEST_SUITE_P(Approximations, Gelu, ::testing::Values(GeluApproximation::Tanh, GeluApproximation::None),
                         [](const auto &info) { return info.param == GeluApproximation::Tanh ? "Tanh" : "Exact"; });

TEST(Swiglu, ForwardMatchesFormula) {
  SwigluShape s{5, 7};
  Vec x = randomVec(s.rows * 2 * s.ffn, 1, -5, 5), y(s.rows * s.ffn), ref(y.size());
  swigluForward(s, x.data(), y.data());
  for (Index r = 0; r < s.rows; ++r)
    for (Index i = 0; i < s.ffn; ++i) {
      double a = x[r * 2 * s.ffn + i], b = x[r * 2 * s.ffn + s.ffn + i];
      ref[r * s.ffn + i] = a / (1 + std::exp(-a)) * b;
    }
  EXPECT_LT(scaledError(y, ref), 1e-15);
}

TEST(Swiglu, FiniteDifferences) {
  SwigluShape s{3, 5};
  Vec x = randomVec(s.rows * 2 * s.ffn, 2, -3, 3), r = randomVec(s.rows * s.ffn, 3), y(r.size()),
      dx = nanVec(x.size());
  auto loss = [&] {
    swigluForward(s, x.data(), y.data());
    return dot(y, r);
  };
  swigluBackward(s, x.data(), r.data(), dx.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
}

TEST(Swiglu, FloatAgreesWithDoubleAndIsDeterministic) {
  SwigluShape s{64, 700};
  Vec x = randomVec(s.rows * 2 * s.ffn, 4, -6, 6), dy = randomVec(s.rows * s.ffn, 5), y(dy.size()), dx(x.size());
  VecF xf = toFloat(x), dyf = toFloat(dy), yf(y.size()), dxf(x.size()), yf2(y.size()), dxf2(x.size());
  swigluForward(s, x.data(), y.data());
  swigluBackward(s, x.data(), dy.data(), dx.data());
  ThreadScope threads(2);
  swigluForward(s, xf.data(), yf.data());
  swigluBackward(s, xf.data(), dyf.data(), dxf.data());
  swigluForward(s, xf.data(), yf2.data());
  swigluBackward(s, xf.data(), dyf.data(), dxf2.data());
  EXPECT_FLOAT_AGREES(yf, y);
  EXPECT_FLOAT_AGREES(dxf, dx);
  EXPECT_TRUE(sameBits(yf, yf2));
  EXPECT_TRUE(sameBits(dxf, dxf2));
}

TEST(Elementwise, AddAccumulateScaleCopyZero) {
  const Index n = 40000; // large enough to run on a thread team
  Vec a = randomVec(n, 1), b = randomVec(n, 2), out(n), acc = b;
  add(n, a.data(), b.data(), out.data());
  accumulate(n, a.data(), acc.data());
  for (Index i = 0; i < n; ++i) {
    ASSERT_EQ(out[i], a[i] + b[i]);
    ASSERT_EQ(acc[i], b[i] + a[i]);
  }
  add(n, a.data(), b.data(), a.data()); // in place
  EXPECT_EQ(a, out);
  scale(n, 0.5, out.data());
  for (Index i = 0; i < n; ++i)
    ASSERT_EQ(out[i], a[i] * 0.5);
  Vec c(n);
  copy(n, a.data(), c.data());
  EXPECT_EQ(c, a);
  fillZero(n, c.data());
  EXPECT_EQ(c, Vec(n, 0.0));
  fill(n, 2.5, c.data());
  EXPECT_EQ(c, Vec(n, 2.5));
}

TEST(Elementwise, SumRowsAccumulates) {
  const Index rows = 300, cols = 130; // three column blocks, enough work for a team
  Vec src = randomVec(rows * cols, 1), base = randomVec(cols, 2), dst = base;
  sumRows(rows, cols, src.data(), dst.data());
  for (Index c = 0; c < cols; ++c) {
    double ref = 0;
    for (Index r = 0; r < rows; ++r)
      ref += src[r * cols + c];
    EXPECT_NEAR(dst[c] - base[c], ref, 1e-12);
  }
}

TEST(Threads, SetNumThreads) {
  ThreadScope threads(3);
  EXPECT_EQ(numThreads(), 3);
  setNumThreads(0);
  EXPECT_EQ(numThreads(), 1);
}

} // namespace
