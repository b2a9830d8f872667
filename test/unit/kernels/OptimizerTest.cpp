//===- OptimizerTest.cpp - AdamW, gradient norm, gradient scaling ---------------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

// torch.optim.AdamW's documented algorithm, in double, written independently of the kernel.
void referenceAdamW(const AdamWConfig &c, bool decay, Vec &p, const Vec &g, Vec &m, Vec &v) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (decay)
      p[i] -= c.lr * c.weightDecay * p[i];
    m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
    const double mHat = m[i] / (1 - std::pow(c.beta1, double(c.step)));
    const double vHat = v[i] / (1 - std::pow(c.beta2, double(c.step)));
    p[i] -= c.lr * mHat / (std::sqrt(vHat) + c.eps);
  }
}

TEST(AdamW, MatchesReferenceOverSteps) {
  const Index n = 1000;
  for (bool decay : {true, false}) {
    Vec p = randomVec(n, 1), m(n, 0.0), v(n, 0.0), pRef = p, mRef = m, vRef = v;
    AdamWConfig c{3e-3, 0.9, 0.95, 1e-8, 0.1, 1};
    for (int step = 1; step <= 5; ++step) {
      c.step = step;
      Vec g = randomVec(n, 100 + step);
      adamwStep(n, c, decay, p.data(), g.data(), m.data(), v.data());
      referenceAdamW(c, decay, pRef, g, mRef, vRef);
    }
    EXPECT_LT(scaledError(p, pRef), 1e-14);
    EXPECT_LT(scaledError(m, mRef), 1e-14);
    EXPECT_LT(scaledError(v, vRef), 1e-14);
  }
}

// The first step moves each weight by lr against its gradient's sign (m̂ = g, v̂ = g²), after decay.
TEST(AdamW, FirstStepIsSignDescent) {
  Vec p = {1.0, -2.0, 0.5}, g = {0.3, -4.0, 1e-3}, m(3, 0.0), v(3, 0.0);
  AdamWConfig c{0.01, 0.9, 0.999, 1e-12, 0.5, 1};
  adamwStep<double>(3, c, true, p.data(), g.data(), m.data(), v.data());
  EXPECT_NEAR(p[0], 1.0 * (1 - 0.005) - 0.01, 1e-9);
  EXPECT_NEAR(p[1], -2.0 * (1 - 0.005) + 0.01, 1e-9);
  EXPECT_NEAR(p[2], 0.5 * (1 - 0.005) - 0.01, 1e-9);
}

TEST(AdamW, FloatAgreesWithDouble) {
  const Index n = 70000;
  Vec p = randomVec(n, 1), m = randomVec(n, 2, -0.01, 0.01), v = randomVec(n, 3, 0.0, 1e-4), g = randomVec(n, 4);
  VecF pf = toFloat(p), mf = toFloat(m), vf = toFloat(v), gf = toFloat(g);
  AdamWConfig c{1e-3, 0.9, 0.999, 1e-8, 0.01, 7};
  adamwStep(n, c, true, p.data(), g.data(), m.data(), v.data());
  adamwStep(n, c, true, pf.data(), gf.data(), mf.data(), vf.data());
  EXPECT_FLOAT_AGREES(pf, p);
  EXPECT_FLOAT_AGREES(mf, m);
  EXPECT_FLOAT_AGREES(vf, v);
}

TEST(GradNorm, GlobalNormAndScaling) {
  Vec a = randomVec(100000, 1), b = randomVec(7, 2);
  double ref = 0;
  for (double x : a)
    ref += x * x;
  for (double x : b)
    ref += x * x;
  const double *tensors[] = {a.data(), b.data()};
  const Index sizes[] = {Index(a.size()), Index(b.size())};
  EXPECT_NEAR(globalNorm(2, tensors, sizes), std::sqrt(ref), 1e-12 * std::sqrt(ref));
  double *mutableTensors[] = {a.data(), b.data()};
  const Vec b0 = b;
  scaleTensors(2, mutableTensors, sizes, 0.5);
  EXPECT_EQ(b[3], b0[3] * 0.5);
  EXPECT_NEAR(globalNorm(2, tensors, sizes), 0.5 * std::sqrt(ref), 1e-12 * std::sqrt(ref));
}

TEST(GradNorm, FloatAccumulatesInDoubleDeterministically) {
  ThreadScope threads(2);
  VecF x = toFloat(randomVec(1 << 20, 3));
  double ref = 0;
  for (float v : x)
    ref += double(v) * double(v);
  const double first = sumOfSquares(Index(x.size()), x.data());
  EXPECT_NEAR(first, ref, 1e-12 * ref);
  EXPECT_EQ(sumOfSquares(Index(x.size()), x.data()), first);
}

} // namespace
