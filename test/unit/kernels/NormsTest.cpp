//===- NormsTest.cpp - LayerNorm and RMSNorm ----------------------------------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

constexpr double kEps = 1e-5;

TEST(LayerNorm, ForwardMatchesTextbook) {
  NormShape s{6, 8};
  Vec x = randomVec(s.rows * s.hidden, 1, -2, 3), w = randomVec(s.hidden, 2), b = randomVec(s.hidden, 3);
  Vec y(x.size()), mean(s.rows), rstd(s.rows);
  layerNormForward(s, kEps, x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data());
  for (Index r = 0; r < s.rows; ++r) {
    double mu = 0, var = 0;
    for (Index i = 0; i < s.hidden; ++i)
      mu += x[r * s.hidden + i] / s.hidden;
    for (Index i = 0; i < s.hidden; ++i)
      var += (x[r * s.hidden + i] - mu) * (x[r * s.hidden + i] - mu) / s.hidden;
    EXPECT_NEAR(mean[r], mu, 1e-14);
    EXPECT_NEAR(rstd[r], 1 / std::sqrt(var + kEps), 1e-12);
    for (Index i = 0; i < s.hidden; ++i)
      EXPECT_NEAR(y[r * s.hidden + i], (x[r * s.hidden + i] - mu) / std::sqrt(var + kEps) * w[i] + b[i], 1e-13);
  }
}

// Parameter gradients accumulate into what the buffers hold; the input gradient overwrites (NaN before).
TEST(LayerNorm, FiniteDifferences) {
  NormShape s{5, 7};
  Vec x = randomVec(s.rows * s.hidden, 1), w = randomVec(s.hidden, 2, 0.5, 1.5), b = randomVec(s.hidden, 3);
  Vec r = randomVec(x.size(), 4), y(x.size()), mean(s.rows), rstd(s.rows);
  auto loss = [&] {
    layerNormForward(s, kEps, x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data());
    return dot(y, r);
  };
  loss();
  Vec dx = nanVec(x.size()), dwBase = randomVec(s.hidden, 5), dbBase = randomVec(s.hidden, 6);
  Vec dw = dwBase, db = dbBase;
  layerNormBackward(s, x.data(), w.data(), mean.data(), rstd.data(), r.data(), dx.data(), dw.data(), db.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
  EXPECT_GRAD_NEAR(minus(dw, dwBase), numericGrad(w, loss));
  EXPECT_GRAD_NEAR(minus(db, dbBase), numericGrad(b, loss));
}

TEST(LayerNorm, FloatAgreesWithDoubleAndIsDeterministic) {
  NormShape s{300, 200}; // 60000 elements: several threads and column blocks
  Vec x = randomVec(s.rows * s.hidden, 1, -3, 3), w = randomVec(s.hidden, 2), b = randomVec(s.hidden, 3);
  Vec dy = randomVec(x.size(), 4), y(x.size()), mean(s.rows), rstd(s.rows), dx(x.size()), dw(s.hidden, 0.0),
      db(s.hidden, 0.0);
  layerNormForward(s, kEps, x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data());
  layerNormBackward(s, x.data(), w.data(), mean.data(), rstd.data(), dy.data(), dx.data(), dw.data(), db.data());
  ThreadScope threads(2);
  VecF xf = toFloat(x), wf = toFloat(w), bf = toFloat(b), dyf = toFloat(dy);
  VecF runs[2][5];
  for (auto &run : runs) {
    VecF yf(x.size()), meanf(s.rows), rstdf(s.rows), dxf(x.size()), dwf(s.hidden, 0.0f), dbf(s.hidden, 0.0f);
    layerNormForward(s, kEps, xf.data(), wf.data(), bf.data(), yf.data(), meanf.data(), rstdf.data());
    layerNormBackward(s, xf.data(), wf.data(), meanf.data(), rstdf.data(), dyf.data(), dxf.data(), dwf.data(),
                      dbf.data());
    run[0] = yf, run[1] = dxf, run[2] = dwf, run[3] = dbf, run[4] = rstdf;
  }
  EXPECT_FLOAT_AGREES(runs[0][0], y);
  EXPECT_FLOAT_AGREES(runs[0][1], dx);
  EXPECT_FLOAT_AGREES(runs[0][2], dw);
  EXPECT_FLOAT_AGREES(runs[0][3], db);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(sameBits(runs[0][i], runs[1][i])) << i;
  // The parameter gradients sum each column's rows in order whatever the split: one thread gives the same bits.
  ThreadScope one(1);
  VecF dxf(x.size()), dwf(s.hidden, 0.0f), dbf(s.hidden, 0.0f), meanf(s.rows), rstdf(s.rows), yf(x.size());
  layerNormForward(s, kEps, xf.data(), wf.data(), bf.data(), yf.data(), meanf.data(), rstdf.data());
  layerNormBackward(s, xf.data(), wf.data(), meanf.data(), rstdf.data(), dyf.data(), dxf.data(), dwf.data(),
                    dbf.data());
  EXPECT_TRUE(sameBits(dwf, runs[0][2]));
  EXPECT_TRUE(sameBits(dbf, runs[0][3]));
  EXPECT_TRUE(sameBits(dxf, runs[0][1]));
}

TEST(RmsNorm, ForwardMatchesTextbook) {
  NormShape s{4, 9};
  Vec x = randomVec(s.rows * s.hidden, 1, -2, 3), w = randomVec(s.hidden, 2), y(x.size()), rstd(s.rows);
  rmsNormForward(s, kEps, x.data(), w.data(), y.data(), rstd.data());
  for (Index r = 0; r < s.rows; ++r) {
    double ms = 0;
    for (Index i = 0; i < s.hidden; ++i)
      ms += x[r * s.hidden + i] * x[r * s.hidden + i] / s.hidden;
    EXPECT_NEAR(rstd[r], 1 / std::sqrt(ms + kEps), 1e-12);
    for (Index i = 0; i < s.hidden; ++i)
      EXPECT_NEAR(y[r * s.hidden + i], x[r * s.hidden + i] / std::sqrt(ms + kEps) * w[i], 1e-13);
  }
}

TEST(RmsNorm, FiniteDifferences) {
  NormShape s{5, 6};
  Vec x = randomVec(s.rows * s.hidden, 1), w = randomVec(s.hidden, 2, 0.5, 1.5), r = randomVec(x.size(), 3);
  Vec y(x.size()), rstd(s.rows);
  auto loss = [&] {
    rmsNormForward(s, kEps, x.data(), w.data(), y.data(), rstd.data());
    return dot(y, r);
  };
  loss();
  Vec dx = nanVec(x.size()), dwBase = randomVec(s.hidden, 4), dw = dwBase;
  rmsNormBackward(s, x.data(), w.data(), rstd.data(), r.data(), dx.data(), dw.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
  EXPECT_GRAD_NEAR(minus(dw, dwBase), numericGrad(w, loss));
}

TEST(RmsNorm, FloatAgreesWithDoubleAndIsDeterministic) {
  NormShape s{300, 200};
  Vec x = randomVec(s.rows * s.hidden, 1, -3, 3), w = randomVec(s.hidden, 2), dy = randomVec(x.size(), 4);
  Vec y(x.size()), rstd(s.rows), dx(x.size()), dw(s.hidden, 0.0);
  rmsNormForward(s, kEps, x.data(), w.data(), y.data(), rstd.data());
  rmsNormBackward(s, x.data(), w.data(), rstd.data(), dy.data(), dx.data(), dw.data());
  ThreadScope threads(2);
  VecF xf = toFloat(x), wf = toFloat(w), dyf = toFloat(dy);
  VecF runs[2][3];
  for (auto &run : runs) {
    VecF yf(x.size()), rstdf(s.rows), dxf(x.size()), dwf(s.hidden, 0.0f);
    rmsNormForward(s, kEps, xf.data(), wf.data(), yf.data(), rstdf.data());
    rmsNormBackward(s, xf.data(), wf.data(), rstdf.data(), dyf.data(), dxf.data(), dwf.data());
    run[0] = yf, run[1] = dxf, run[2] = dwf;
  }
  EXPECT_FLOAT_AGREES(runs[0][0], y);
  EXPECT_FLOAT_AGREES(runs[0][1], dx);
  EXPECT_FLOAT_AGREES(runs[0][2], dw);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(sameBits(runs[0][i], runs[1][i])) << i;
}

} // namespace
