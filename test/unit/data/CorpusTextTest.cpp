//===- CorpusTextTest.cpp - The built-in language through a subword tokenizer -===//
//
// tokensPerWord is an exact expectation over the stationary state distribution; these tests check its two
// assumptions on real documents (a document's first word is the only one without a leading space, and it is
// exactly the word emitted from the start state; each word is one piece that BPE tokenizes on its own), then
// the expectation against the empirical ratio of a long stream.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/CorpusText.h"

#include "megatron/Tokenizer/BpeTrainer.h"
#include "megatron/Tokenizer/Gpt2Bpe.h"

#include <cmath>
#include <gtest/gtest.h>
#include <memory>

using namespace megatron::data;
using megatron::tokenizer::BpeTrainer;
using megatron::tokenizer::BpeTrainerOptions;
using megatron::tokenizer::Gpt2Bpe;

namespace {

const SyntheticLanguage &lang() { return SyntheticLanguage::builtin(); }

/// A BPE of `vocabSize` tokens learned from documents 0..999 of seed 7.
std::unique_ptr<Gpt2Bpe> learnedBpe(size_t vocabSize) {
  BpeTrainer trainer;
  for (uint64_t d = 0; d < 1000; ++d)
    trainer.addText(documentText(lang(), 7, d));
  BpeTrainerOptions options;
  options.vocabSize = vocabSize;
  auto result = trainer.train(options);
  std::string error;
  auto bpe = Gpt2Bpe::loadFromMemory(result.vocabJson, result.mergesTxt, error);
  EXPECT_TRUE(bpe) << error;
  return bpe;
}

size_t countTokens(const Gpt2Bpe &bpe, std::string_view text) {
  std::vector<int32_t> ids;
  bpe.encode(text, ids);
  return ids.size();
}

TEST(CorpusTextTest, DocumentTextIsTheWordsWithoutTheEndOfDocumentWord) {
  std::vector<int32_t> words = lang().document(3, 5);
  std::string text = documentText(lang(), 3, 5);
  EXPECT_EQ(text.find("<|endoftext|>"), std::string::npos);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  words.pop_back();
  EXPECT_EQ(lang().vocabulary().tokenize(text), words);
}

TEST(CorpusTextTest, OneTokenPerPieceGivesOneTokenPerWord) {
  EXPECT_NEAR(tokensPerWord(lang(), [](std::string_view) { return size_t(1); }), 1.0, 1e-12);
}

// The per-word rule that tokensPerWord takes the expectation of, applied along each document's states, gives
// exactly the tokens megatron-preprocess --append-eod writes for it.
TEST(CorpusTextTest, PerWordRuleCountsEveryDocumentExactly) {
  std::unique_ptr<Gpt2Bpe> bpe = learnedBpe(400);
  ASSERT_TRUE(bpe);
  const UnifilarProcess &process = lang().process();
  const Vocabulary &vocabulary = lang().vocabulary();
  for (uint64_t d = 0; d < 2000; ++d) {
    std::vector<int32_t> words = lang().document(11, d);
    int32_t state = process.startState();
    size_t byRule = 0;
    for (int32_t word : words) {
      const Transition *arc = process.find(state, word);
      ASSERT_NE(arc, nullptr);
      byRule += word == lang().endOfDocument()
                    ? 1
                    : countTokens(*bpe, (state == process.startState() ? "" : " ") + vocabulary.word(word));
      state = arc->next;
    }
    EXPECT_EQ(state, process.startState()) << "a document ends back at the start state";
    ASSERT_EQ(byRule, countTokens(*bpe, documentText(lang(), 11, d)) + 1) << "document " << d;
  }
}

// The exact expectation against a long stream of another seed: tokens over words, within 5 standard errors
// (documents are independent, so the ratio estimator's error comes from per-document sums).
TEST(CorpusTextTest, ExpectationMatchesALongStream) {
  std::unique_ptr<Gpt2Bpe> bpe = learnedBpe(400);
  ASSERT_TRUE(bpe);
  const double exact = tokensPerWord(lang(), [&](std::string_view text) { return countTokens(*bpe, text); });
  EXPECT_GT(exact, 1.05) << "a 400-token vocabulary must split some words";
  const int documents = 20000;
  std::vector<double> tokens(documents), words(documents);
  double totalTokens = 0, totalWords = 0;
  for (int d = 0; d < documents; ++d) {
    words[d] = static_cast<double>(lang().document(99, d).size());
    tokens[d] = static_cast<double>(countTokens(*bpe, documentText(lang(), 99, d)) + 1);
    totalTokens += tokens[d];
    totalWords += words[d];
  }
  const double ratio = totalTokens / totalWords;
  double variance = 0; // of the residuals t - ratio * w, the delta method for a ratio of sums
  for (int d = 0; d < documents; ++d)
    variance += std::pow(tokens[d] - ratio * words[d], 2);
  const double standardError = std::sqrt(variance / (documents - 1) * documents) / totalWords;
  EXPECT_NEAR(ratio, exact, 5 * standardError) << "standard error " << standardError;
  EXPECT_LT(standardError, 0.002);
}

} // namespace
