//===- EmbeddingsTest.cpp - Token, position and relative position embeddings, RoPE ===//

#include "KernelTestUtil.h"

using namespace megatron::cpu;
using namespace megatron::cpu::test;

namespace {

TEST(Embedding, ForwardGathersRows) {
  EmbeddingShape s{7, 5, 3};
  std::vector<std::int32_t> ids = {4, 0, 2, 2, 1, 4, 3};
  Vec table = randomVec(s.vocab * s.hidden, 1), out = nanVec(s.tokens * s.hidden);
  ASSERT_TRUE(embeddingForward(s, ids.data(), table.data(), out.data()).ok());
  for (Index t = 0; t < s.tokens; ++t)
    for (Index h = 0; h < s.hidden; ++h)
      EXPECT_EQ(out[t * s.hidden + h], table[ids[t] * s.hidden + h]);
}

TEST(Embedding, FiniteDifferencesWithRepeatedIds) {
  EmbeddingShape s{9, 4, 5};
  std::vector<std::int32_t> ids = {3, 1, 3, 0, 3, 1, 2, 0, 0};
  Vec table = randomVec(s.vocab * s.hidden, 1), r = randomVec(s.tokens * s.hidden, 2), out(r.size());
  auto loss = [&] {
    EXPECT_TRUE(embeddingForward(s, ids.data(), table.data(), out.data()).ok());
    return dot(out, r);
  };
  Vec base = randomVec(table.size(), 3), dtable = base;
  ASSERT_TRUE(embeddingBackward(s, ids.data(), r.data(), dtable.data()).ok());
  EXPECT_GRAD_NEAR(minus(dtable, base), numericGrad(table, loss));
}

TEST(Embedding, OutOfRangeIdsAreReported) {
  EmbeddingShape s{5, 10, 2};
  Vec table = randomVec(s.vocab * s.hidden, 1), out(s.tokens * s.hidden, 7.0), dtable(table.size(), 0.0);
  for (std::int32_t bad : {10, -1, 1 << 30}) {
    std::vector<std::int32_t> ids = {1, 2, bad, 3, bad};
    IndexStatus status = embeddingForward(s, ids.data(), table.data(), out.data());
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.position, 2);
    EXPECT_EQ(status.value, bad);
    EXPECT_EQ(status.limit, 10);
    EXPECT_EQ(out, Vec(out.size(), 7.0)) << "nothing is written on failure";
    status = embeddingBackward(s, ids.data(), out.data(), dtable.data());
    EXPECT_EQ(status.position, 2);
    EXPECT_EQ(dtable, Vec(dtable.size(), 0.0));
  }
}

TEST(Embedding, BackwardDeterministicAndFloatAgrees) {
  EmbeddingShape s{4096, 50, 200};
  auto ids = randomIds(s.tokens, 1, std::int32_t(s.vocab));
  Vec dout = randomVec(s.tokens * s.hidden, 2), dtable(s.vocab * s.hidden, 0.0);
  ASSERT_TRUE(embeddingBackward(s, ids.data(), dout.data(), dtable.data()).ok());
  ThreadScope threads(2);
  VecF doutf = toFloat(dout), a(dtable.size(), 0.0f), b(dtable.size(), 0.0f);
  ASSERT_TRUE(embeddingBackward(s, ids.data(), doutf.data(), a.data()).ok());
  ASSERT_TRUE(embeddingBackward(s, ids.data(), doutf.data(), b.data()).ok());
  EXPECT_FLOAT_AGREES(a, dtable);
  EXPECT_TRUE(sameBits(a, b));
}

TEST(PositionEmbedding, ForwardAndFiniteDifferences) {
  PositionEmbeddingShape s{2, 3, 4, 5};
  Vec x = randomVec(s.batch * s.seq * s.hidden, 1), table = randomVec(s.maxPositions * s.hidden, 2);
  Vec r = randomVec(x.size(), 3), out(x.size());
  positionEmbeddingForward(s, x.data(), table.data(), out.data());
  for (Index b = 0; b < s.batch; ++b)
    for (Index p = 0; p < s.seq; ++p)
      for (Index h = 0; h < s.hidden; ++h)
        EXPECT_EQ(out[(b * s.seq + p) * s.hidden + h], x[(b * s.seq + p) * s.hidden + h] + table[p * s.hidden + h]);
  auto loss = [&] {
    positionEmbeddingForward(s, x.data(), table.data(), out.data());
    return dot(out, r);
  };
  Vec dx = nanVec(x.size()), base = randomVec(table.size(), 4), dtable = base;
  positionEmbeddingBackward(s, r.data(), dx.data(), dtable.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
  EXPECT_GRAD_NEAR(minus(dtable, base), numericGrad(table, loss));
  // Rows past seq are untouched (their gradient is zero).
  for (Index h = 0; h < s.hidden; ++h)
    EXPECT_EQ(dtable[4 * s.hidden + h], base[4 * s.hidden + h]);
}

TEST(PositionEmbedding, FloatAgreesWithDoubleAndIsDeterministic) {
  PositionEmbeddingShape s{8, 64, 96, 80};
  Vec x = randomVec(s.batch * s.seq * s.hidden, 1), table = randomVec(s.maxPositions * s.hidden, 2),
      dout = randomVec(x.size(), 3), out(x.size()), dtable(table.size(), 0.0);
  positionEmbeddingForward(s, x.data(), table.data(), out.data());
  positionEmbeddingBackward<double>(s, dout.data(), nullptr, dtable.data());
  ThreadScope threads(2);
  VecF xf = toFloat(x), tablef = toFloat(table), doutf = toFloat(dout);
  VecF outf(x.size()), a(table.size(), 0.0f), b(table.size(), 0.0f), dxf(x.size());
  positionEmbeddingForward(s, xf.data(), tablef.data(), outf.data());
  positionEmbeddingBackward(s, doutf.data(), dxf.data(), a.data());
  positionEmbeddingBackward<float>(s, doutf.data(), nullptr, b.data());
  EXPECT_FLOAT_AGREES(outf, out);
  EXPECT_FLOAT_AGREES(a, dtable);
  EXPECT_TRUE(sameBits(a, b));
  EXPECT_TRUE(sameBits(dxf, doutf));
}

// Values worked out by hand from HF transformers' _relative_position_bucket (relative = key − query).
TEST(RelativePositionBias, T5BucketsByHand) {
  // Encoder: bidirectional, 32 buckets (16 per direction, 8 exact), max distance 128.
  struct Case {
    std::int64_t relative;
    std::int32_t bucket;
  };
  const Case encoder[] = {
      {0, 0},     {-1, 1},    {-7, 7},  {-8, 8},     {-12, 9},   // log(1.5)/log(16)·8 = 1.17
      {-16, 10},  {-32, 12},  {-64, 14},                         // exact boundaries: log(2^k)/log(16)·8 = 2k
      {-100, 15}, {-200, 15}, {1, 17},  {7, 23},     {8, 24},    // keys after the query: 16 + bucket
      {20, 26},                                                  // 16 + 8 + ⌊log(2.5)/log(16)·8 = 2.64⌋
      {127, 31},  {5000, 31}};
  for (const Case &c : encoder)
    EXPECT_EQ(t5RelativePositionBucket(c.relative, true, 32, 128), c.bucket) << "relative " << c.relative;
  // Decoder: unidirectional, 32 buckets (16 exact), max distance 128; keys after the query share bucket 0.
  const Case decoder[] = {{5, 0},   {0, 0},    {-3, 3},   {-15, 15}, {-16, 16},
                          {-40, 23}, // 16 + ⌊log(2.5)/log(8)·16 = 7.05⌋
                          {-127, 31}, {-500, 31}};
  for (const Case &c : decoder)
    EXPECT_EQ(t5RelativePositionBucket(c.relative, false, 32, 128), c.bucket) << "relative " << c.relative;
}

TEST(RelativePositionBias, ForwardAndFiniteDifferences) {
  for (bool bidirectional : {true, false}) {
    RelativePositionBiasShape s{3, 5, 6, 8, 12, bidirectional};
    Vec table = randomVec(s.numBuckets * s.heads, 1), bias = nanVec(s.heads * s.querySeq * s.keySeq);
    std::vector<std::int32_t> ws(relativePositionBiasWorkspaceSize(s));
    relativePositionBiasForward(s, table.data(), bias.data(), ws.data());
    for (Index h = 0; h < s.heads; ++h)
      for (Index q = 0; q < s.querySeq; ++q)
        for (Index k = 0; k < s.keySeq; ++k) {
          std::int32_t bucket = t5RelativePositionBucket(k - q, bidirectional, s.numBuckets, s.maxDistance);
          ASSERT_EQ(bias[(h * s.querySeq + q) * s.keySeq + k], table[bucket * s.heads + h]);
        }
    Vec r = randomVec(bias.size(), 2);
    auto loss = [&] {
      relativePositionBiasForward(s, table.data(), bias.data(), ws.data());
      return dot(bias, r);
    };
    Vec base = randomVec(table.size(), 3), dtable = base;
    relativePositionBiasBackward(s, r.data(), dtable.data(), ws.data());
    EXPECT_GRAD_NEAR(minus(dtable, base), numericGrad(table, loss));
  }
}

TEST(RelativePositionBias, ManyBucketsFloatAndDeterminism) {
  // More buckets than one accumulator block (64), and enough work for a thread team.
  RelativePositionBiasShape s{4, 100, 120, 160, 400, true};
  Vec dbias = randomVec(s.heads * s.querySeq * s.keySeq, 1), dtable(s.numBuckets * s.heads, 0.0);
  std::vector<std::int32_t> ws(relativePositionBiasWorkspaceSize(s));
  relativePositionBiasBackward(s, dbias.data(), dtable.data(), ws.data());
  Vec ref(dtable.size(), 0.0);
  for (Index h = 0; h < s.heads; ++h)
    for (Index q = 0; q < s.querySeq; ++q)
      for (Index k = 0; k < s.keySeq; ++k)
        ref[t5RelativePositionBucket(k - q, true, s.numBuckets, s.maxDistance) * s.heads + h] +=
            dbias[(h * s.querySeq + q) * s.keySeq + k];
  EXPECT_LT(scaledError(dtable, ref), 1e-13);
  ThreadScope threads(2);
  VecF dbiasf = toFloat(dbias), a(dtable.size(), 0.0f), b(dtable.size(), 0.0f);
  relativePositionBiasBackward(s, dbiasf.data(), a.data(), ws.data());
  relativePositionBiasBackward(s, dbiasf.data(), b.data(), ws.data());
  EXPECT_FLOAT_AGREES(a, ref);
  EXPECT_TRUE(sameBits(a, b));
}

// Independent reference: rotate each (i, i + r/2) pair by pos·base^(−2i/r).
Vec ropeReference(const RopeShape &s, const Vec &x) {
  Vec y = x;
  const Index half = s.rotaryDim / 2;
  for (Index b = 0; b < s.batch; ++b)
    for (Index p = 0; p < s.seq; ++p)
      for (Index h = 0; h < s.heads; ++h)
        for (Index i = 0; i < half; ++i) {
          const Index o = ((b * s.seq + p) * s.heads + h) * s.headDim;
          const double theta = p / std::pow(s.base, 2.0 * i / s.rotaryDim);
          y[o + i] = x[o + i] * std::cos(theta) - x[o + i + half] * std::sin(theta);
          y[o + i + half] = x[o + i + half] * std::cos(theta) + x[o + i] * std::sin(theta);
        }
  return y;
}

TEST(Rope, ForwardMatchesReferenceAndPassesThroughTail) {
  RopeShape s{2, 5, 3, 10, 6, 10000.0};
  Vec x = randomVec(s.batch * s.seq * s.heads * s.headDim, 1), y = nanVec(x.size());
  ropeForward(s, x.data(), y.data());
  EXPECT_LT(scaledError(y, ropeReference(s, x)), 1e-14);
  for (Index row = 0; row < s.batch * s.seq * s.heads; ++row)
    for (Index c = s.rotaryDim; c < s.headDim; ++c)
      EXPECT_EQ(y[row * s.headDim + c], x[row * s.headDim + c]);
  // Position 0 is not rotated.
  for (Index c = 0; c < s.headDim; ++c)
    EXPECT_EQ(y[c], x[c]);
}

TEST(Rope, FiniteDifferences) {
  RopeShape s{2, 4, 2, 8, 6, 100.0};
  Vec x = randomVec(s.batch * s.seq * s.heads * s.headDim, 1), r = randomVec(x.size(), 2), y(x.size());
  auto loss = [&] {
    ropeForward(s, x.data(), y.data());
    return dot(y, r);
  };
  Vec dx = nanVec(x.size());
  ropeBackward(s, r.data(), dx.data());
  EXPECT_GRAD_NEAR(dx, numericGrad(x, loss));
}

TEST(Rope, LongHeadsInPlaceFloatAndDeterminism) {
  // rotaryDim/2 > 64 exercises the chunked angles; in place and out of place agree.
  RopeShape s{2, 64, 4, 160, 144, 10000.0};
  Vec x = randomVec(s.batch * s.seq * s.heads * s.headDim, 1), y(x.size());
  ropeForward(s, x.data(), y.data());
  EXPECT_LT(scaledError(y, ropeReference(s, x)), 1e-13);
  Vec back(x.size());
  ropeBackward(s, y.data(), back.data()); // the backward is the inverse rotation
  EXPECT_LT(scaledError(back, x), 1e-14);
  ThreadScope threads(2);
  VecF xf = toFloat(x), a(x.size()), b = xf;
  ropeForward(s, xf.data(), a.data());
  ropeForward(s, b.data(), b.data());
  EXPECT_FLOAT_AGREES(a, y);
  EXPECT_TRUE(sameBits(a, b));
}

} // namespace
