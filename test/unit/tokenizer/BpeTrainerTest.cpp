//===- BpeTrainerTest.cpp - Learning byte-level BPE merges ----------------===//

#include "megatron/Tokenizer/BpeTrainer.h"
#include "megatron/Tokenizer/Gpt2Bpe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using megatron::tokenizer::BpeTrainer;
using megatron::tokenizer::BpeTrainerOptions;
using megatron::tokenizer::BpeTrainerResult;
using megatron::tokenizer::Gpt2Bpe;

namespace {

std::unique_ptr<Gpt2Bpe> loadResult(const BpeTrainerResult &r) {
  std::string error;
  auto t = Gpt2Bpe::loadFromMemory(r.vocabJson, r.mergesTxt, error);
  EXPECT_TRUE(t) << error;
  return t;
}

std::vector<std::string> mergeLines(const std::string &merges) {
  std::vector<std::string> lines;
  size_t pos = merges.find('\n') + 1; // after "#version: 0.2"
  while (pos < merges.size()) {
    size_t end = merges.find('\n', pos);
    lines.push_back(merges.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

TEST(BpeTrainerTest, SennrichsExample) {
  // The example of Sennrich et al. (2016), as pieces without spaces: the most frequent pair first; among equal
  // counts, the pair of smaller ids (GPT-2's: 'e' 68, 'l' 75, 'o' 78, 's' 82, 't' 83, 'w' 86).
  BpeTrainer trainer;
  trainer.addPiece("low", 5);
  trainer.addPiece("lower", 2);
  trainer.addPiece("newest", 6);
  trainer.addPiece("widest", 3);
  BpeTrainerOptions options;
  options.vocabSize = 256 + 4 + 1;
  BpeTrainerResult r = trainer.train(options);
  EXPECT_EQ(mergeLines(r.mergesTxt), (std::vector<std::string>{"e s", "es t", "l o", "lo w"}));
  EXPECT_EQ(r.vocabSize, 261u);
  EXPECT_EQ(r.numMerges, 4u);
  EXPECT_EQ(r.remerges, 0u);
  // low: 1 token x5; lower: low e r x2; newest: n e w est x6; widest: w i d est x3.
  EXPECT_EQ(r.corpusTokens, 5u + 3 * 2 + 4 * 6 + 4 * 3);
  auto t = loadResult(r);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), 261u);
  EXPECT_EQ(t->endOfText(), 260);
  EXPECT_EQ(t->tokenId("low"), 259);
  EXPECT_EQ(t->tokenId("!"), 0); // the bytes keep GPT-2's ids
  EXPECT_EQ(t->tokenId(" "), 220);
  std::vector<int32_t> ids;
  t->encode("lowest", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{259, t->tokenId("est")}));
}

TEST(BpeTrainerTest, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainer trainer;
  trainer.addText("abab cd");
  BpeTrainerOptions options;
  options.vocabSize = 1000;
  BpeTrainerResult r = trainer.train(options);
  EXPECT_EQ(mergeLines(r.mergesTxt), (std::vector<std::string>{"a b"}));
  options.minFrequency = 1;
  r = trainer.train(options);
  // All three pairs then occur once: the smaller ids first (c 66 and d 67, then Ġ 220, then ab 256).
  EXPECT_EQ(mergeLines(r.mergesTxt), (std::vector<std::string>{"a b", "c d", "Ġ cd", "ab ab"}));
  options.endOfText = false;
  options.vocabSize = 258;
  r = trainer.train(options);
  EXPECT_EQ(r.numMerges, 2u);
  auto t = loadResult(r);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->endOfText(), -1);
}

std::string englishLike(std::mt19937 &rng, size_t words) {
  static const char *vocabulary[] = {"the", "of", "and", "to", "in", "is", "was", "it", "for", "that",
                                     "printing", "press", "books", "reading", "readers", "spread", "cities",
                                     "history", "Gutenberg", "type", "ink", "paper", "wasn't", "they're", "1450",
                                     "Europe", "café", "naïve", "東京", "😀"};
  std::string out;
  for (size_t w = 0; w < words; ++w) {
    size_t r = size_t(std::pow(30.0, std::uniform_real_distribution<double>(0, 1)(rng))) - 1;
    out += w ? " " : "";
    out += vocabulary[std::min<size_t>(r, 29)];
    if (rng() % 11 == 0)
      out += rng() % 2 ? "," : ".\n";
  }
  return out;
}

TEST(BpeTrainerTest, LearnsAVocabularyGpt2BpeLoadsAndUses) {
  std::mt19937 rng(6);
  std::vector<std::string> documents;
  BpeTrainer trainer;
  for (int d = 0; d < 50; ++d) {
    documents.push_back(englishLike(rng, 200));
    trainer.addText(documents.back());
  }
  BpeTrainerOptions options;
  options.vocabSize = 256 + 80 + 1;
  BpeTrainerResult r = trainer.train(options);
  EXPECT_EQ(r.vocabSize, options.vocabSize);
  EXPECT_GE(r.numMerges, 80u);
  auto t = loadResult(r);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), options.vocabSize);
  EXPECT_EQ(t->numMerges(), r.numMerges);
  EXPECT_NE(t->tokenId(" the"), -1);
  EXPECT_NE(t->tokenId(" printing"), -1);

  // The encoder reproduces the trainer's segmentation of its corpus: the same number of tokens.
  uint64_t tokens = 0, bytes = 0;
  for (const std::string &doc : documents) {
    std::vector<int32_t> ids;
    t->encode(doc, ids);
    EXPECT_EQ(t->decode(ids), doc);
    tokens += ids.size();
    bytes += doc.size();
  }
  EXPECT_EQ(tokens, r.corpusTokens);
  EXPECT_LT(tokens * 3, bytes); // it compresses

  // Deterministic.
  BpeTrainerResult again = trainer.train(options);
  EXPECT_EQ(again.vocabJson, r.vocabJson);
  EXPECT_EQ(again.mergesTxt, r.mergesTxt);
}

TEST(BpeTrainerTest, RandomCorporaStayConsistentWithTheEncoder) {
  std::mt19937 rng(7);
  for (int corpus = 0; corpus < 30; ++corpus) {
    BpeTrainer trainer;
    std::vector<std::pair<std::string, uint64_t>> pieces;
    for (int p = 0; p < 40; ++p) {
      std::string piece;
      for (int i = 0, n = 1 + rng() % 12; i < n; ++i)
        piece += "abc"[rng() % (corpus % 2 ? 2 : 3)];
      uint64_t count = 1 + rng() % 20;
      pieces.emplace_back(piece, count);
      trainer.addPiece(piece, count);
    }
    BpeTrainerOptions options;
    options.vocabSize = 256 + 1 + 5 + rng() % 40;
    options.minFrequency = 1;
    BpeTrainerResult r = trainer.train(options);
    auto t = loadResult(r);
    ASSERT_TRUE(t) << "corpus " << corpus;
    uint64_t tokens = 0;
    for (auto &[piece, count] : pieces) {
      std::vector<int32_t> ids;
      t->encode(piece, ids);
      tokens += count * ids.size();
    }
    EXPECT_EQ(tokens, r.corpusTokens) << "corpus " << corpus << " (remerges " << r.remerges << ")";
  }
}

} // namespace
