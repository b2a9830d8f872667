//===- SyntheticLanguageTest.cpp - The built-in language: exact rate, determinism, grammar ---===//

#include "runtime/data/SyntheticLanguage.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <map>
#include <set>

using megatron::data::SyntheticLanguage;
using megatron::data::Transition;
using megatron::data::UnifilarProcess;

namespace {

const SyntheticLanguage &lang() { return SyntheticLanguage::builtin(); }

uint64_t fnv1a(const std::vector<int32_t> &tokens, uint64_t h = 0xCBF29CE484222325ull) {
  for (int32_t t : tokens)
    for (int i = 0; i < 4; ++i) {
      h ^= static_cast<uint32_t>(t) >> (8 * i) & 0xFF;
      h *= 0x100000001B3ull;
    }
  return h;
}

TEST(SyntheticLanguageTest, DocumentsArePureFunctionsOfSeedAndIndex) {
  SyntheticLanguage fresh; // built again from scratch: the same machine, the same documents
  EXPECT_EQ(fresh.process().numStates(), lang().process().numStates());
  for (uint64_t d : {0ull, 1ull, 17ull, 123456789ull, ~0ull}) {
    EXPECT_EQ(lang().document(5, d), lang().document(5, d));
    EXPECT_EQ(lang().document(5, d), fresh.document(5, d));
  }
  // Other seeds and other indices give other documents (these are long enough not to coincide by chance).
  int different = 0;
  for (uint64_t d = 0; d < 50; ++d)
    different += lang().document(5, d) != lang().document(6, d);
  EXPECT_GE(different, 48);
  different = 0;
  for (uint64_t d = 0; d < 50; ++d)
    different += lang().document(5, d) != lang().document(5, d + 50);
  EXPECT_GE(different, 48);
  // A truncated document is a prefix of the whole one.
  std::vector<int32_t> whole = lang().document(5, 3), prefix;
  ASSERT_GT(whole.size(), 10u);
  EXPECT_EQ(lang().appendDocument(5, 3, 10, prefix), 10u);
  EXPECT_EQ(prefix, std::vector<int32_t>(whole.begin(), whole.begin() + 10));
}

// The language and the sampler are part of the checkpoint contract: a change here changes every run's data.
// Update the pinned values only on purpose, and say so in docs/data.md.
TEST(SyntheticLanguageTest, PinnedLanguageAndStream) {
  EXPECT_EQ(lang().vocabulary().size(), 215);
  EXPECT_EQ(lang().process().numStates(), 667);
  EXPECT_NEAR(lang().entropyRate(), 2.12696515464614, 1e-12);
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint64_t d = 0; d < 100; ++d)
    h = fnv1a(lang().document(1234, d), h);
  EXPECT_EQ(h, 7293698371023047310ull);
}

TEST(SyntheticLanguageTest, DocumentsFollowTheGrammar) {
  const UnifilarProcess &p = lang().process();
  const auto &v = lang().vocabulary();
  const int32_t eod = lang().endOfDocument(), quote = *v.id("\""), question = *v.id("?"), period = *v.id(".");
  const int32_t does = *v.id("does"), doo = *v.id("do"), says = *v.id("says"), say = *v.id("say");
  for (uint64_t d = 0; d < 2000; ++d) {
    std::vector<int32_t> doc = lang().document(42, d);
    ASSERT_GE(doc.size(), 5u);
    ASSERT_EQ(doc.back(), eod);
    EXPECT_EQ(std::count(doc.begin(), doc.end(), eod), 1);
    // The true model accepts it and ends where documents start.
    int32_t state = p.startState();
    for (int32_t t : doc) {
      const Transition *arc = p.find(state, t);
      ASSERT_NE(arc, nullptr) << lang().stateName(state) << " cannot emit '" << v.word(t) << "'";
      state = arc->next;
    }
    EXPECT_EQ(state, p.startState());
    // Quotes pair up; a question ends with "?"; no quotation inside a quotation.
    EXPECT_EQ(std::count(doc.begin(), doc.end(), quote) % 2, 0);
    bool inQuote = false, sentenceIsQuestion = false, atSentenceStart = true;
    for (size_t i = 0; i < doc.size(); ++i) {
      int32_t t = doc[i];
      if (atSentenceStart && t != quote && t != eod) {
        sentenceIsQuestion = t == does || t == doo;
        atSentenceStart = false;
      }
      if (t == quote) {
        inQuote = !inQuote;
        atSentenceStart = true; // an opening quote starts the quoted sentence, a closing one ends the sentence
      }
      if (t == says || t == say) {
        EXPECT_FALSE(inQuote);
      }
      if (t == period || t == question) {
        EXPECT_EQ(t == question, sentenceIsQuestion) << v.detokenize(doc);
        atSentenceStart = true;
      }
    }
    EXPECT_FALSE(inQuote);
  }
}

TEST(SyntheticLanguageTest, TopicPersistsOverADocument) {
  // A word's topics: the known topics of the states that emit it. Topic words have exactly one.
  const UnifilarProcess &p = lang().process();
  const auto &names = SyntheticLanguage::topicNames();
  std::map<int32_t, std::set<std::string>> topics;
  for (int32_t s = 0; s < p.numStates(); ++s) {
    std::string name = lang().stateName(s);
    std::string topic = name.substr(name.find("topic=") + 6);
    topic = topic.substr(0, topic.find(' '));
    if (topic != "unknown")
      for (const Transition &t : p.transitions(s))
        topics[t.token].insert(topic);
  }
  int topicWords = 0;
  for (const auto &[word, set] : topics)
    topicWords += set.size() == 1;
  EXPECT_GE(topicWords, 150);
  EXPECT_EQ(names.size(), 5u);
  for (uint64_t d = 0; d < 500; ++d) {
    std::set<std::string> seen;
    for (int32_t t : lang().document(3, d))
      if (topics[t].size() == 1)
        seen.insert(*topics[t].begin());
    EXPECT_LE(seen.size(), 1u) << lang().vocabulary().detokenize(lang().document(3, d));
  }
}

TEST(SyntheticLanguageTest, StationaryDistributionSolvesTheBalanceEquations) {
  // Independent of the power iteration: Gaussian elimination with partial pivoting on pi (P - I) = 0 with one
  // equation replaced by sum(pi) = 1.
  const UnifilarProcess &p = lang().process();
  const int n = p.numStates();
  std::vector<double> a(static_cast<size_t>(n) * (n + 1), 0.0); // row i: equation i, over unknowns pi(j)
  auto at = [&](int i, int j) -> double & { return a[static_cast<size_t>(i) * (n + 1) + j]; };
  for (int s = 0; s < n; ++s) {
    at(s, s) -= 1.0;
    for (const Transition &t : p.transitions(s))
      at(t.next, s) += t.probability; // equation t.next: sum_s pi(s) P(s, t.next) - pi(t.next) = 0
  }
  for (int j = 0; j < n; ++j)
    at(n - 1, j) = 1.0;
  at(n - 1, n) = 1.0;
  for (int c = 0; c < n; ++c) {
    int pivot = c;
    for (int r = c + 1; r < n; ++r)
      if (std::fabs(at(r, c)) > std::fabs(at(pivot, c)))
        pivot = r;
    ASSERT_GT(std::fabs(at(pivot, c)), 1e-12);
    for (int j = c; j <= n; ++j)
      std::swap(at(c, j), at(pivot, j));
    for (int r = c + 1; r < n; ++r) {
      double f = at(r, c) / at(c, c);
      if (f != 0.0)
        for (int j = c; j <= n; ++j)
          at(r, j) -= f * at(c, j);
    }
  }
  std::vector<double> pi(n);
  for (int r = n - 1; r >= 0; --r) {
    double x = at(r, n);
    for (int j = r + 1; j < n; ++j)
      x -= at(r, j) * pi[j];
    pi[r] = x / at(r, r);
  }
  double maxDiff = 0.0, rate = 0.0;
  for (int s = 0; s < n; ++s) {
    EXPECT_GT(p.stationaryDistribution()[s], 0.0);
    maxDiff = std::max(maxDiff, std::fabs(pi[s] - p.stationaryDistribution()[s]));
    rate += pi[s] * p.stateEntropies()[s];
  }
  EXPECT_LT(maxDiff, 1e-13);
  EXPECT_NEAR(rate, lang().entropyRate(), 1e-13);
  EXPECT_LT(p.stationaryResidual(), 1e-12);
}

TEST(SyntheticLanguageTest, EntropyRateMatchesTheLogLossOfTheTrueModel) {
  // The per-token log-loss of the generating model on a long stream converges to the entropy rate (the
  // Shannon-McMillan-Breiman theorem). Documents are independent renewal cycles, so the standard error of the
  // ratio (total loss / total tokens) comes from the per-document sums (the delta method).
  const UnifilarProcess &p = lang().process();
  std::vector<double> loss, length;
  double totalLoss = 0.0, totalLength = 0.0;
  for (uint64_t d = 0; totalLength < 3e6; ++d) {
    std::vector<int32_t> doc = lang().document(99, d);
    int32_t state = p.startState();
    double l = 0.0;
    for (int32_t t : doc) {
      const Transition *arc = p.find(state, t);
      l -= std::log(arc->probability);
      state = arc->next;
    }
    loss.push_back(l);
    length.push_back(static_cast<double>(doc.size()));
    totalLoss += l;
    totalLength += static_cast<double>(doc.size());
  }
  const double n = static_cast<double>(loss.size()), estimate = totalLoss / totalLength;
  double var = 0.0;
  for (size_t i = 0; i < loss.size(); ++i) {
    double r = loss[i] - estimate * length[i];
    var += r * r;
  }
  var /= n - 1;
  const double stderror = std::sqrt(var / n) / (totalLength / n);
  EXPECT_LT(stderror, 0.002);
  EXPECT_NEAR(estimate, lang().entropyRate(), 5 * stderror)
      << "estimate " << estimate << " +- " << stderror << ", exact " << lang().entropyRate();
}

TEST(SyntheticLanguageTest, FiguresAreInRange) {
  const double rate = lang().entropyRate();
  EXPECT_GT(rate, 1.0);
  EXPECT_LT(rate, 3.0);
  EXPECT_NEAR(lang().entropyRateBits(), rate / std::log(2.0), 1e-15);
  // The sample floor approaches the rate as samples grow (as 1/seq_length).
  const double f128 = lang().sampleFloor(128), f1024 = lang().sampleFloor(1024);
  EXPECT_LT(std::fabs(f128 - rate), 0.05);
  EXPECT_LT(std::fabs(f1024 - rate), std::fabs(f128 - rate) / 5);
}

} // namespace
