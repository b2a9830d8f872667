//===- GptBatchLoaderTest.cpp - Megatron-style samples: shapes, shift, splits, resumption ---===//

#include "runtime/data/GptBatchLoader.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <set>
#include <stdexcept>

using namespace megatron::data;

namespace {

GptBatchLoaderOptions options(Split split, int64_t seqLength = 64, int64_t microBatch = 4, uint64_t seed = 1234) {
  GptBatchLoaderOptions o;
  o.seed = seed;
  o.split = split;
  o.seqLength = seqLength;
  o.microBatchSize = microBatch;
  return o;
}

bool sameBatch(const GptBatch &a, const GptBatch &b) {
  return a.microBatchSize == b.microBatchSize && a.seqLength == b.seqLength && a.firstSample == b.firstSample &&
         a.tokens == b.tokens && a.labels == b.labels && a.lossMask == b.lossMask;
}

TEST(GptBatchLoaderTest, ShapesAndLabelShift) {
  GptBatchLoader loader(options(Split::Train, 64, 4));
  GptBatch b = loader.batch(10);
  EXPECT_EQ(b.microBatchSize, 4);
  EXPECT_EQ(b.seqLength, 64);
  EXPECT_EQ(b.firstSample, 10u);
  ASSERT_EQ(b.tokens.size(), 4u * 64);
  ASSERT_EQ(b.labels.size(), 4u * 64);
  ASSERT_EQ(b.lossMask.size(), 4u * 64);
  const int32_t vocab = loader.language().vocabulary().size();
  for (int64_t row = 0; row < 4; ++row) {
    std::vector<int32_t> s = loader.sample(10 + static_cast<uint64_t>(row));
    ASSERT_EQ(s.size(), 65u);
    for (int64_t t = 0; t < 64; ++t) {
      EXPECT_EQ(b.tokens[row * 64 + t], s[t]);
      EXPECT_EQ(b.labels[row * 64 + t], s[t + 1]);
      EXPECT_EQ(b.lossMask[row * 64 + t], 1.0f);
      EXPECT_GE(b.tokens[row * 64 + t], 0);
      EXPECT_LT(b.tokens[row * 64 + t], vocab);
      if (t + 1 < 64) {
        EXPECT_EQ(b.labels[row * 64 + t], b.tokens[row * 64 + t + 1]);
      }
    }
  }
}

TEST(GptBatchLoaderTest, SamplesAreDocumentsJoinedByEndOfDocument) {
  GptBatchLoader loader(options(Split::Validation, 128, 1));
  const SyntheticLanguage &lang = loader.language();
  for (uint64_t i : {0ull, 1ull, 999ull}) {
    std::vector<int32_t> expected;
    std::vector<uint64_t> docs = loader.sampleDocuments(i);
    for (size_t k = 0; k < docs.size(); ++k) {
      EXPECT_EQ(docs[k], documentIndex(Split::Validation, i, static_cast<uint32_t>(k)));
      std::vector<int32_t> doc = lang.document(1234, docs[k]);
      EXPECT_EQ(doc.back(), lang.endOfDocument());
      expected.insert(expected.end(), doc.begin(), doc.end());
    }
    ASSERT_GE(expected.size(), 129u);
    expected.resize(129);
    EXPECT_EQ(loader.sample(i), expected);
  }
  // Samples hold several documents: the end-of-document token is frequent.
  std::vector<int32_t> s = loader.sample(0);
  EXPECT_GE(std::count(s.begin(), s.end(), lang.endOfDocument()), 1);
}

TEST(GptBatchLoaderTest, Deterministic) {
  GptBatchLoader a(options(Split::Train)), b(options(Split::Train));
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(sameBatch(a.next(), b.next()));
  EXPECT_TRUE(sameBatch(a.batch(77), b.batch(77)));
  // Another seed gives other data.
  GptBatchLoader c(options(Split::Train, 64, 4, 1235));
  EXPECT_NE(a.batch(0).tokens, c.batch(0).tokens);
}

TEST(GptBatchLoaderTest, ResumesFromItsState) {
  GptBatchLoader run(options(Split::Train, 32, 3));
  EXPECT_EQ(run.state(), 0u);
  std::vector<GptBatch> batches;
  for (int i = 0; i < 6; ++i)
    batches.push_back(run.next());
  EXPECT_EQ(run.state(), 18u);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(batches[i].firstSample, 3u * i);

  // A checkpoint after batch 2 holds state 6; a new loader restored from it continues with batch 2.
  GptBatchLoader resumed(options(Split::Train, 32, 3));
  resumed.restore(6);
  for (int i = 2; i < 6; ++i)
    EXPECT_TRUE(sameBatch(resumed.next(), batches[i]));
  EXPECT_EQ(resumed.state(), run.state());
  // Far into the run costs the same as at its start.
  resumed.restore(1'000'000'000'000ull);
  GptBatch far = resumed.next();
  EXPECT_EQ(far.firstSample, 1'000'000'000'000ull);
  EXPECT_TRUE(sameBatch(far, run.batch(1'000'000'000'000ull)));
}

TEST(GptBatchLoaderTest, SplitsNeverShareDocuments) {
  GptBatchLoader train(options(Split::Train, 128, 1)), valid(options(Split::Validation, 128, 1)),
      test(options(Split::Test, 128, 1));
  std::set<uint64_t> ids[3];
  std::set<std::vector<int32_t>> texts[3];
  GptBatchLoader *loaders[3] = {&train, &valid, &test};
  for (int split = 0; split < 3; ++split)
    for (uint64_t i = 0; i < 300; ++i)
      for (uint64_t d : loaders[split]->sampleDocuments(i)) {
        EXPECT_TRUE(ids[split].insert(d).second) << "document " << d << " used twice";
        EXPECT_EQ(d >> 62, static_cast<uint64_t>(split));
        std::vector<int32_t> doc = train.language().document(1234, d);
        if (doc.size() >= 40) // short documents may coincide by chance; long ones do not
          texts[split].insert(doc);
      }
  for (int a = 0; a < 3; ++a)
    for (int b = a + 1; b < 3; ++b) {
      for (uint64_t d : ids[a])
        EXPECT_EQ(ids[b].count(d), 0u);
      for (const auto &doc : texts[a])
        EXPECT_EQ(texts[b].count(doc), 0u);
    }
  EXPECT_GT(texts[0].size(), 300u);
  EXPECT_NE(train.sample(0), valid.sample(0));
}

TEST(GptBatchLoaderTest, FloorMatchesTheLogLossOfTheTrueModel) {
  // The mean log-loss of the generating model over the labels of independent samples converges to the exact
  // sample floor, which differs measurably from the entropy rate.
  const int64_t seq = 128;
  GptBatchLoader loader(options(Split::Validation, seq, 1, 7));
  const UnifilarProcess &p = loader.language().process();
  const int n = 20000;
  double sum = 0.0, sumSq = 0.0;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> s = loader.sample(static_cast<uint64_t>(i));
    int32_t state = p.find(p.startState(), s[0])->next;
    double loss = 0.0;
    for (int64_t t = 1; t <= seq; ++t) {
      const Transition *arc = p.find(state, s[t]);
      loss -= std::log(arc->probability);
      state = arc->next;
    }
    loss /= seq;
    sum += loss;
    sumSq += loss * loss;
  }
  const double mean = sum / n, stderror = std::sqrt((sumSq / n - mean * mean) / (n - 1));
  EXPECT_LT(stderror, 0.002);
  EXPECT_NEAR(mean, loader.floor(), 5 * stderror) << "estimate " << mean << " +- " << stderror;
  EXPECT_GT(std::fabs(loader.floor() - loader.language().entropyRate()), 5 * stderror);
}

TEST(GptBatchLoaderTest, RejectsBadOptionsAndIndices) {
  EXPECT_THROW(GptBatchLoader(options(Split::Train, 0, 1)), std::invalid_argument);
  EXPECT_THROW(GptBatchLoader(options(Split::Train, 65537, 1)), std::invalid_argument);
  EXPECT_THROW(GptBatchLoader(options(Split::Train, 16, 0)), std::invalid_argument);
  GptBatchLoader loader(options(Split::Train, 16, 2));
  EXPECT_NO_THROW(loader.batch(kMaxSampleIndex - 1));
  EXPECT_THROW(loader.batch(kMaxSampleIndex), std::out_of_range);
  EXPECT_THROW(documentIndex(Split::Train, kMaxSampleIndex + 1, 0), std::out_of_range);
  EXPECT_THROW(documentIndex(Split::Train, 0, 1u << 14), std::out_of_range);
  EXPECT_NE(documentIndex(Split::Train, 1, 0), documentIndex(Split::Train, 0, 1));
  EXPECT_NE(documentIndex(Split::Train, 0, 0), documentIndex(Split::Validation, 0, 0));
  EXPECT_STREQ(toString(Split::Validation), "valid");
}

} // namespace
