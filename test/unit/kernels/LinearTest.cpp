//===- LinearTest.cpp - mt.linear and mt.pooler --------------------------------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

TEST(Linear, ForwardMatchesNaive) {
  LinearShape s{5, 7, 3};
  Vec x = randomVec(s.rows * s.in, 1), w = randomVec(s.out * s.in, 2), b = randomVec(s.out, 3);
  Vec y = nanVec(s.rows * s.out), yNoBias = nanVec(y.size());
  linearForward(s, x.data(), w.data(), b.data(), y.data());
  linearForward<double>(s, x.data(), w.data(), nullptr, yNoBias.data());
  for (Index r = 0; r < s.rows; ++r)
    for (Index o = 0; o < s.out; ++o) {
      double acc = 0;
      for (Index i = 0; i < s.in; ++i)
        acc += x[r * s.in + i] * w[o * s.in + i];
      EXPECT_NEAR(y[r * s.out + o], acc + b[o], 1e-14);
      EXPECT_NEAR(yNoBias[r * s.out + o], acc, 1e-14);
    }
}

TEST(Linear, FiniteDifferences) {
  LinearShape s{6, 5, 4};
  Vec x = randomVec(s.rows * s.in, 1), w = randomVec(s.out * s.in, 2), b = randomVec(s.out, 3);
  Vec r = randomVec(s.rows * s.out, 4), y(r.size());
  auto loss = [&] {
    linearForward(s, x.data(), w.data(), b.data(), y.data());
    return dot(y, r);
  };
  Vec dx = nanVec(x.size()), dwBase = randomVec(w.size(), 5), dbBase = randomVec(b.size(), 6);
  Vec dw = dwBase, db = dbBase;
  linearBackwardInput(s, r.data(), w.data(), dx.data());
  linearBackwardWeight(s, r.data(), x.data(), dw.data());
  linearBackwardBias(s, r.data(), db.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
  EXPECT_GRAD_NEAR(minus(dw, dwBase), numericGrad(w, loss));
  EXPECT_GRAD_NEAR(minus(db, dbBase), numericGrad(b, loss));
  // accumulate = true adds dy·W to what dx holds.
  Vec dxBase = randomVec(x.size(), 7), dxAcc = dxBase;
  linearBackwardInput(s, r.data(), w.data(), dxAcc.data(), true);
  EXPECT_LT(scaledError(minus(dxAcc, dxBase), dx), 1e-14);
}

TEST(Linear, FloatAgreesWithDoubleAndIsDeterministic) {
  LinearShape s{256, 96, 80};
  Vec x = randomVec(s.rows * s.in, 1), w = randomVec(s.out * s.in, 2), b = randomVec(s.out, 3);
  Vec dy = randomVec(s.rows * s.out, 4), y(dy.size()), dx(x.size()), dw(w.size(), 0.0), db(b.size(), 0.0);
  linearForward(s, x.data(), w.data(), b.data(), y.data());
  linearBackwardInput(s, dy.data(), w.data(), dx.data());
  linearBackwardWeight(s, dy.data(), x.data(), dw.data());
  linearBackwardBias(s, dy.data(), db.data());
  ThreadScope threads(2);
  VecF xf = toFloat(x), wf = toFloat(w), bf = toFloat(b), dyf = toFloat(dy);
  VecF runs[2][4];
  for (auto &run : runs) {
    VecF yf(y.size()), dxf(x.size()), dwf(w.size(), 0.0f), dbf(b.size(), 0.0f);
    linearForward(s, xf.data(), wf.data(), bf.data(), yf.data());
    linearBackwardInput(s, dyf.data(), wf.data(), dxf.data());
    linearBackwardWeight(s, dyf.data(), xf.data(), dwf.data());
    linearBackwardBias(s, dyf.data(), dbf.data());
    run[0] = yf, run[1] = dxf, run[2] = dwf, run[3] = dbf;
  }
  EXPECT_FLOAT_AGREES(runs[0][0], y);
  EXPECT_FLOAT_AGREES(runs[0][1], dx);
  EXPECT_FLOAT_AGREES(runs[0][2], dw);
  EXPECT_FLOAT_AGREES(runs[0][3], db);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(sameBits(runs[0][i], runs[1][i])) << i;
}

TEST(Pooler, ForwardMatchesNaive) {
  PoolerShape s{3, 4, 5, 6};
  Vec x = randomVec(s.batch * s.seq * s.hidden, 1), w = randomVec(s.out * s.hidden, 2), b = randomVec(s.out, 3);
  Vec y = nanVec(s.batch * s.out);
  poolerForward(s, x.data(), w.data(), b.data(), y.data());
  for (Index i = 0; i < s.batch; ++i)
    for (Index o = 0; o < s.out; ++o) {
      double acc = b[o];
      for (Index h = 0; h < s.hidden; ++h)
        acc += x[i * s.seq * s.hidden + h] * w[o * s.hidden + h];
      EXPECT_NEAR(y[i * s.out + o], std::tanh(acc), 1e-14);
    }
}

TEST(Pooler, FiniteDifferences) {
  PoolerShape s{2, 3, 4, 5};
  Vec x = randomVec(s.batch * s.seq * s.hidden, 1), w = randomVec(s.out * s.hidden, 2), b = randomVec(s.out, 3);
  Vec r = randomVec(s.batch * s.out, 4), y(r.size());
  auto loss = [&] {
    poolerForward(s, x.data(), w.data(), b.data(), y.data());
    return dot(y, r);
  };
  loss();
  Vec dx = nanVec(x.size()), dwBase = randomVec(w.size(), 5), dbBase = randomVec(b.size(), 6);
  Vec dw = dwBase, db = dbBase, workspace(poolerBackwardWorkspaceSize(s));
  poolerBackward(s, x.data(), w.data(), y.data(), r.data(), dx.data(), dw.data(), db.data(), workspace.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
  EXPECT_GRAD_NEAR(minus(dw, dwBase), numericGrad(w, loss));
  EXPECT_GRAD_NEAR(minus(db, dbBase), numericGrad(b, loss));
  for (Index i = 0; i < s.batch; ++i)
    for (Index t = 1; t < s.seq; ++t)
      for (Index h = 0; h < s.hidden; ++h)
        EXPECT_EQ(dx[(i * s.seq + t) * s.hidden + h], 0.0);
}

TEST(Pooler, FloatAgreesWithDouble) {
  PoolerShape s{4, 3, 32, 24};
  Vec x = randomVec(s.batch * s.seq * s.hidden, 1), w = randomVec(s.out * s.hidden, 2, -0.3, 0.3),
      b = randomVec(s.out, 3), dy = randomVec(s.batch * s.out, 4);
  Vec y(dy.size()), dx(x.size()), dw(w.size(), 0.0), db(b.size(), 0.0), ws(poolerBackwardWorkspaceSize(s));
  poolerForward(s, x.data(), w.data(), b.data(), y.data());
  poolerBackward(s, x.data(), w.data(), y.data(), dy.data(), dx.data(), dw.data(), db.data(), ws.data());
  VecF xf = toFloat(x), wf = toFloat(w), bf = toFloat(b), dyf = toFloat(dy);
  VecF yf(dy.size()), dxf(x.size()), dwf(w.size(), 0.0f), dbf(b.size(), 0.0f), wsf(ws.size());
  poolerForward(s, xf.data(), wf.data(), bf.data(), yf.data());
  poolerBackward(s, xf.data(), wf.data(), yf.data(), dyf.data(), dxf.data(), dwf.data(), dbf.data(), wsf.data());
  EXPECT_FLOAT_AGREES(yf, y);
  EXPECT_FLOAT_AGREES(dxf, dx);
  EXPECT_FLOAT_AGREES(dwf, dw);
  EXPECT_FLOAT_AGREES(dbf, db);
}

} // namespace
