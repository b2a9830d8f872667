//===- AttentionTest.cpp - split_qkv / split_kv and core attention --------------===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

//===----------------------------------------------------------------------===//
// Head layouts
//===----------------------------------------------------------------------===//

// Megatron's layout written out: within a token, group j occupies channels [j·(n/g + 2)·d, (j + 1)·(n/g + 2)·d):
// its n/g query heads, then its key head, then its value head.
TEST(SplitQkv, DocumentedLayout) {
  QkvShape s{3, 4, 2, 5}; // tokens, heads, groups, headDim
  const Index perGroup = 2, row = (s.heads + 2 * s.groups) * s.headDim;
  Vec x(s.tokens * row);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = double(i);
  Vec q = nanVec(s.tokens * s.heads * s.headDim), k = nanVec(s.tokens * s.groups * s.headDim), v = nanVec(k.size());
  splitQkvForward(s, x.data(), q.data(), k.data(), v.data());
  for (Index t = 0; t < s.tokens; ++t)
    for (Index c = 0; c < s.headDim; ++c) {
      for (Index h = 0; h < s.heads; ++h) {
        const Index group = h / perGroup, within = h % perGroup;
        EXPECT_EQ(q[(t * s.heads + h) * s.headDim + c], x[t * row + (group * (perGroup + 2) + within) * s.headDim + c]);
      }
      for (Index g = 0; g < s.groups; ++g) {
        EXPECT_EQ(k[(t * s.groups + g) * s.headDim + c], x[t * row + (g * (perGroup + 2) + perGroup) * s.headDim + c]);
        EXPECT_EQ(v[(t * s.groups + g) * s.headDim + c],
                  x[t * row + (g * (perGroup + 2) + perGroup + 1) * s.headDim + c]);
      }
    }
  // The backward puts every channel back: merge(split(x)) = x.
  Vec back = nanVec(x.size());
  splitQkvBackward(s, q.data(), k.data(), v.data(), back.data());
  EXPECT_EQ(back, x);
}

TEST(SplitQkv, FiniteDifferences) {
  QkvShape s{2, 2, 1, 3}; // MQA
  const Index row = (s.heads + 2 * s.groups) * s.headDim;
  Vec x = randomVec(s.tokens * row, 1), rq = randomVec(s.tokens * s.heads * s.headDim, 2),
      rk = randomVec(s.tokens * s.groups * s.headDim, 3), rv = randomVec(rk.size(), 4);
  Vec q(rq.size()), k(rk.size()), v(rv.size());
  auto loss = [&] {
    splitQkvForward(s, x.data(), q.data(), k.data(), v.data());
    return dot(q, rq) + dot(k, rk) + dot(v, rv);
  };
  Vec dx = nanVec(x.size());
  splitQkvBackward(s, rq.data(), rk.data(), rv.data(), dx.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
}

TEST(SplitKv, DocumentedLayoutAndFiniteDifferences) {
  QkvShape s{3, 0, 2, 4};
  const Index row = 2 * s.groups * s.headDim;
  Vec x = randomVec(s.tokens * row, 1), k = nanVec(s.tokens * s.groups * s.headDim), v = nanVec(k.size());
  splitKvForward(s, x.data(), k.data(), v.data());
  for (Index t = 0; t < s.tokens; ++t)
    for (Index g = 0; g < s.groups; ++g)
      for (Index c = 0; c < s.headDim; ++c) {
        EXPECT_EQ(k[(t * s.groups + g) * s.headDim + c], x[t * row + (2 * g) * s.headDim + c]);
        EXPECT_EQ(v[(t * s.groups + g) * s.headDim + c], x[t * row + (2 * g + 1) * s.headDim + c]);
      }
  Vec rk = randomVec(k.size(), 2), rv = randomVec(v.size(), 3);
  auto loss = [&] {
    splitKvForward(s, x.data(), k.data(), v.data());
    return dot(k, rk) + dot(v, rv);
  };
  Vec dx = nanVec(x.size());
  splitKvBackward(s, rk.data(), rv.data(), dx.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

struct AttentionCase {
  const char *name;
  AttentionShape shape;
  AttentionMask mask;
  bool bias;
  double dropout;
  bool fullyMaskedRow; // padding: the last sequence of the batch has no visible key
};

// Which keys a padding mask keeps: a pattern with some zeros, and none at all for the last sequence when asked.
std::vector<std::int32_t> paddingMask(const AttentionCase &c) {
  const AttentionShape &s = c.shape;
  std::vector<std::int32_t> mask(s.batch * s.keySeq);
  for (Index b = 0; b < s.batch; ++b)
    for (Index j = 0; j < s.keySeq; ++j)
      mask[b * s.keySeq + j] = (c.fullyMaskedRow && b == s.batch - 1) ? 0 : ((j + b) % 3 != 1 ? 7 : 0);
  return mask;
}

// A naive reference: per (batch, head, query), scores, mask, softmax, dropout, weighted sum; written from the
// op's definition, independently of the kernel's tiling.
void referenceAttention(const AttentionCase &c, const AttentionConfig &config, const Vec &q, const Vec &k,
                        const Vec &v, const std::vector<std::int32_t> &mask, const Vec *bias, Vec &out, Vec &lse) {
  const AttentionShape &s = c.shape;
  const Index perGroup = s.heads / s.groups;
  out.assign(s.batch * s.querySeq * s.heads * s.headDim, 0.0);
  lse.assign(s.batch * s.heads * s.querySeq, 0.0);
  for (Index b = 0; b < s.batch; ++b)
    for (Index h = 0; h < s.heads; ++h)
      for (Index i = 0; i < s.querySeq; ++i) {
        const Index g = h / perGroup;
        std::vector<double> score(s.keySeq);
        std::vector<bool> visible(s.keySeq);
        double max = -INFINITY;
        for (Index j = 0; j < s.keySeq; ++j) {
          double acc = 0;
          for (Index d = 0; d < s.headDim; ++d)
            acc += q[((b * s.querySeq + i) * s.heads + h) * s.headDim + d] *
                   k[((b * s.keySeq + j) * s.groups + g) * s.headDim + d];
          score[j] = config.softmaxScale * acc + (bias ? (*bias)[(h * s.querySeq + i) * s.keySeq + j] : 0.0);
          visible[j] = c.mask == AttentionMask::Causal    ? j <= i
                       : c.mask == AttentionMask::Padding ? mask[b * s.keySeq + j] != 0
                                                          : true;
          if (visible[j])
            max = std::max(max, score[j]);
        }
        double sum = 0;
        for (Index j = 0; j < s.keySeq; ++j)
          sum += visible[j] ? std::exp(score[j] - max) : 0.0;
        lse[(b * s.heads + h) * s.querySeq + i] = sum == 0 ? -INFINITY : max + std::log(sum);
        for (Index j = 0; j < s.keySeq; ++j) {
          if (!visible[j])
            continue;
          double p = std::exp(score[j] - max) / sum;
          if (config.dropout.rate > 0) {
            const std::uint64_t index = std::uint64_t(((b * s.heads + h) * s.querySeq + i) * s.keySeq + j);
            p = dropoutKeeps(config.dropout, index) ? p / (1 - config.dropout.rate) : 0.0;
          }
          for (Index d = 0; d < s.headDim; ++d)
            out[((b * s.querySeq + i) * s.heads + h) * s.headDim + d] +=
                p * v[((b * s.keySeq + j) * s.groups + g) * s.headDim + d];
        }
      }
}

class Attention : public ::testing::TestWithParam<AttentionCase> {
protected:
  void SetUp() override {
    const AttentionCase &c = GetParam();
    const AttentionShape &s = c.shape;
    config.mask = c.mask;
    config.softmaxScale = 1.0 / std::sqrt(double(s.headDim));
    config.dropout = DropoutConfig{c.dropout, 1234, 77};
    q = randomVec(s.batch * s.querySeq * s.heads * s.headDim, 1, -2, 2);
    k = randomVec(s.batch * s.keySeq * s.groups * s.headDim, 2, -2, 2);
    v = randomVec(k.size(), 3);
    bias = randomVec(s.heads * s.querySeq * s.keySeq, 4);
    mask = paddingMask(c);
    r = randomVec(q.size(), 5);
    workspace.assign(attentionWorkspaceSize(s, numThreads()), 0.0);
  }
  const std::int32_t *maskPtr() const { return GetParam().mask == AttentionMask::Padding ? mask.data() : nullptr; }
  const double *biasPtr() const { return GetParam().bias ? bias.data() : nullptr; }
  void forward(Vec &out, Vec &lse) {
    const AttentionShape &s = GetParam().shape;
    out = nanVec(s.batch * s.querySeq * s.heads * s.headDim);
    lse = nanVec(s.batch * s.heads * s.querySeq);
    attentionForward(s, config, q.data(), k.data(), v.data(), maskPtr(), biasPtr(), out.data(), lse.data(),
                     workspace.data(), Index(workspace.size()));
  }

  AttentionConfig config;
  Vec q, k, v, bias, r, workspace;
  std::vector<std::int32_t> mask;
};

TEST_P(Attention, ForwardMatchesNaiveSoftmax) {
  Vec out, lse, refOut, refLse;
  forward(out, lse);
  referenceAttention(GetParam(), config, q, k, v, mask, GetParam().bias ? &bias : nullptr, refOut, refLse);
  EXPECT_LT(scaledError(out, refOut), 1e-13);
  EXPECT_LT(scaledError(lse, refLse), 1e-13);
}

TEST_P(Attention, FiniteDifferences) {
  const AttentionCase &c = GetParam();
  const AttentionShape &s = c.shape;
  Vec out, lse;
  auto loss = [&] {
    forward(out, lse);
    return dot(out, r);
  };
  loss();
  Vec dq = nanVec(q.size()), dk = nanVec(k.size()), dv = nanVec(v.size()), dbias = nanVec(bias.size());
  attentionBackward(s, config, q.data(), k.data(), v.data(), maskPtr(), biasPtr(), lse.data(), r.data(), dq.data(),
                    dk.data(), dv.data(), c.bias ? dbias.data() : nullptr, workspace.data(),
                    Index(workspace.size()));
  EXPECT_GRAD_NEAR(dq, numericGrad(q, loss));
  EXPECT_GRAD_NEAR(dk, numericGrad(k, loss));
  EXPECT_GRAD_NEAR(dv, numericGrad(v, loss));
  if (c.bias) {
    EXPECT_GRAD_NEAR(dbias, numericGrad(bias, loss));
  }
}

// The cases whose last sequence is fully padded.
class AttentionFullyMasked : public Attention {};

// A query that sees no key: output 0, lse −inf, zero gradients, no NaN anywhere.
TEST_P(AttentionFullyMasked, RowsGiveZeros) {
  const AttentionCase &c = GetParam();
  const AttentionShape &s = c.shape;
  Vec out, lse;
  forward(out, lse);
  Vec dq(q.size()), dk(k.size()), dv(v.size()), dbias(bias.size());
  attentionBackward(s, config, q.data(), k.data(), v.data(), maskPtr(), biasPtr(), lse.data(), r.data(), dq.data(),
                    dk.data(), dv.data(), c.bias ? dbias.data() : nullptr, workspace.data(),
                    Index(workspace.size()));
  const Index last = s.batch - 1, qPerBatch = s.querySeq * s.heads * s.headDim,
              kvPerBatch = s.keySeq * s.groups * s.headDim;
  for (Index i = 0; i < qPerBatch; ++i) {
    EXPECT_EQ(out[last * qPerBatch + i], 0.0);
    EXPECT_EQ(dq[last * qPerBatch + i], 0.0);
  }
  for (Index i = 0; i < kvPerBatch; ++i) {
    EXPECT_EQ(dk[last * kvPerBatch + i], 0.0);
    EXPECT_EQ(dv[last * kvPerBatch + i], 0.0);
  }
  for (Index h = 0; h < s.heads; ++h)
    for (Index i = 0; i < s.querySeq; ++i)
      EXPECT_EQ(lse[(last * s.heads + h) * s.querySeq + i], -INFINITY);
  for (const Vec *t : {&out, &dq, &dk, &dv})
    for (double x : *t)
      ASSERT_FALSE(std::isnan(x));
}

TEST_P(Attention, FloatAgreesWithDoubleAndIsDeterministic) {
  const AttentionCase &c = GetParam();
  const AttentionShape &s = c.shape;
  Vec out, lse;
  forward(out, lse);
  Vec dq(q.size()), dk(k.size()), dv(v.size()), dbias(bias.size());
  attentionBackward(s, config, q.data(), k.data(), v.data(), maskPtr(), biasPtr(), lse.data(), r.data(), dq.data(),
                    dk.data(), dv.data(), c.bias ? dbias.data() : nullptr, workspace.data(),
                    Index(workspace.size()));
  ThreadScope threads(2);
  VecF qf = toFloat(q), kf = toFloat(k), vf = toFloat(v), biasf = toFloat(bias), rf = toFloat(r);
  VecF wsf(attentionWorkspaceSize(s, 2));
  VecF runs[2][5];
  for (auto &run : runs) {
    VecF outf(out.size()), lsef(lse.size()), dqf(q.size()), dkf(k.size()), dvf(v.size()), dbiasf(bias.size());
    attentionForward(s, config, qf.data(), kf.data(), vf.data(), maskPtr(), c.bias ? biasf.data() : nullptr,
                     outf.data(), lsef.data(), wsf.data(), Index(wsf.size()));
    attentionBackward(s, config, qf.data(), kf.data(), vf.data(), maskPtr(), c.bias ? biasf.data() : nullptr,
                      lsef.data(), rf.data(), dqf.data(), dkf.data(), dvf.data(), c.bias ? dbiasf.data() : nullptr,
                      wsf.data(), Index(wsf.size()));
    run[0] = outf, run[1] = dqf, run[2] = dkf, run[3] = dvf, run[4] = dbiasf;
  }
  EXPECT_FLOAT_AGREES(runs[0][0], out);
  EXPECT_FLOAT_AGREES(runs[0][1], dq);
  EXPECT_FLOAT_AGREES(runs[0][2], dk);
  EXPECT_FLOAT_AGREES(runs[0][3], dv);
  if (c.bias) {
    EXPECT_FLOAT_AGREES(runs[0][4], dbias);
  }
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(sameBits(runs[0][i], runs[1][i])) << i;
}

// A workspace for one thread runs the kernel on one thread, with the same results.
TEST_P(Attention, SmallWorkspaceUsesFewerThreads) {
  const AttentionShape &s = GetParam().shape;
  ThreadScope threads(2);
  Vec out, lse;
  forward(out, lse);
  workspace.assign(attentionWorkspaceSize(s, 1), 0.0);
  Vec out1, lse1;
  forward(out1, lse1);
  EXPECT_EQ(out, out1);
  EXPECT_EQ(lse, lse1);
}

// b, sq, skv, n, g, d.
const AttentionCase kCases[] = {
    {"CausalGqa", {2, 5, 5, 4, 2, 3}, AttentionMask::Causal, false, 0.0, false},
    {"CausalMha", {2, 4, 4, 2, 2, 4}, AttentionMask::Causal, false, 0.0, false},
    {"BidirectionalCrossWithBias", {2, 4, 6, 4, 2, 3}, AttentionMask::Bidirectional, true, 0.0, false},
    {"PaddingWithBias", {2, 5, 5, 4, 2, 3}, AttentionMask::Padding, true, 0.0, false},
    {"PaddingFullyMaskedRow", {3, 3, 4, 4, 2, 2}, AttentionMask::Padding, true, 0.0, true},
    {"CausalDropout", {2, 5, 5, 4, 2, 3}, AttentionMask::Causal, false, 0.3, false},
    {"PaddingMqaDropoutBias", {2, 4, 5, 4, 1, 3}, AttentionMask::Padding, true, 0.25, true},
    {"CausalAcrossTiles", {1, 70, 70, 2, 1, 2}, AttentionMask::Causal, false, 0.0, false},
    {"BidirectionalAcrossTilesBiasDropout", {1, 130, 5, 2, 2, 2}, AttentionMask::Bidirectional, true, 0.1, false},
};

INSTANTIATE_TEST_SUITE_P(Cases, Attention, ::testing::ValuesIn(kCases),
                         [](const auto &info) { return std::string(info.param.name); });

std::vector<AttentionCase> fullyMaskedCases() {
  std::vector<AttentionCase> cases;
  for (const AttentionCase &c : kCases)
    if (c.fullyMaskedRow)
      cases.push_back(c);
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cases, AttentionFullyMasked, ::testing::ValuesIn(fullyMaskedCases()),
                         [](const auto &info) { return std::string(info.param.name); });

} // namespace
