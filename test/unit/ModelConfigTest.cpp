//===- ModelConfigTest.cpp - Megatron's defaults and checks ----------------===//

#include "megatron/Model/ModelConfig.h"

#include <gtest/gtest.h>

using namespace megatron;

namespace {

ModelConfig tinyGpt() {
  ModelConfig c;
  c.numLayers = 2;
  c.hiddenSize = 64;
  c.numAttentionHeads = 4;
  c.seqLength = 16;
  c.vocabSize = 100;
  return c;
}

/// True when some message mentions every one of `words`.
bool mentions(const std::vector<std::string> &problems, std::initializer_list<const char *> words) {
  for (const std::string &p : problems) {
    bool all = true;
    for (const char *w : words)
      all &= p.find(w) != std::string::npos;
    if (all)
      return true;
  }
  return false;
}

TEST(ModelConfig, DerivesMegatronDefaults) {
  ModelConfig c = tinyGpt();
  c.resolveDefaults();
  EXPECT_EQ(c.ffnHiddenSize, 256);
  EXPECT_EQ(c.kvChannels, 16);
  EXPECT_EQ(c.numQueryGroups, 4);
  EXPECT_EQ(c.maxPositionEmbeddings, 16);
  EXPECT_EQ(c.globalBatchSize, 1);
  EXPECT_TRUE(c.validate().empty());
}

TEST(ModelConfig, SwigluFfnKeepsTheParameterBudgetRoundedTo64) {
  ModelConfig c = tinyGpt();
  c.hiddenSize = 4096;
  c.numAttentionHeads = 32;
  c.swiglu = true;
  c.resolveDefaults();
  EXPECT_EQ(c.ffnHiddenSize, 10880); // int(4·4096·2/3 / 64)·64, as Megatron's arguments.py
}

TEST(ModelConfig, SwigluDefaultThatRoundsToZeroAsksForTheFlag) {
  ModelConfig c = tinyGpt();
  c.hiddenSize = 16;
  c.swiglu = true;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--swiglu", "--ffn-hidden-size", "16"}));
}

TEST(ModelConfig, GroupQueryAttentionDefaultsToOneGroup) {
  ModelConfig c = tinyGpt();
  c.groupQueryAttention = true;
  c.resolveDefaults();
  EXPECT_EQ(c.numQueryGroups, 1);
}

TEST(ModelConfig, PadsTheVocabularyLikeMegatron) {
  ModelConfig c = tinyGpt();
  c.vocabSize = 50257;
  EXPECT_EQ(c.paddedVocabSize(), 50304);
  c.makeVocabSizeDivisibleBy = 1;
  EXPECT_EQ(c.paddedVocabSize(), 50257);
  c.makeVocabSizeDivisibleBy = 128;
  c.tensorModelParallelSize = 8; // pads to a multiple of 128·8
  EXPECT_EQ(c.paddedVocabSize(), 51200);
}

TEST(ModelConfig, RejectsHiddenNotDivisibleByHeads) {
  ModelConfig c = tinyGpt();
  c.hiddenSize = 100;
  c.numAttentionHeads = 3;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--hidden-size", "--num-attention-heads", "divisible"}));
  c.kvChannels = 32; // an explicit head dimension makes it legal, as in Megatron
  EXPECT_TRUE(c.validate().empty());
}

TEST(ModelConfig, RejectsHeadsNotDivisibleByGroups) {
  ModelConfig c = tinyGpt();
  c.groupQueryAttention = true;
  c.numQueryGroups = 3;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--num-attention-heads", "--num-query-groups"}));
}

TEST(ModelConfig, RejectsQueryGroupsWithoutGqa) {
  ModelConfig c = tinyGpt();
  c.numQueryGroups = 2;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--num-query-groups", "--group-query-attention"}));
}

TEST(ModelConfig, RejectsNonPositiveSizes) {
  for (int64_t ModelConfig::*field :
       {&ModelConfig::numLayers, &ModelConfig::hiddenSize, &ModelConfig::numAttentionHeads, &ModelConfig::seqLength,
        &ModelConfig::microBatchSize}) {
    for (int64_t bad : {0, -4}) {
      ModelConfig c = tinyGpt();
      c.*field = bad;
      c.resolveDefaults();
      EXPECT_TRUE(mentions(c.validate(), {"must be positive"})) << "value " << bad;
    }
  }
}

TEST(ModelConfig, RejectsMissingVocabulary) {
  ModelConfig c = tinyGpt();
  c.vocabSize = 0;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--vocab-size", "--vocab-file"}));
}

TEST(ModelConfig, RejectsSequencesLongerThanThePositionTable) {
  ModelConfig c = tinyGpt();
  c.maxPositionEmbeddings = 8;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--max-position-embeddings"}));
  c.positionEmbeddingType = PositionEmbedding::Rope; // RoPE has no table to outgrow
  EXPECT_TRUE(c.validate().empty());
}

TEST(ModelConfig, RejectsGlobalBatchNotAMultipleOfMicroBatch) {
  ModelConfig c = tinyGpt();
  c.microBatchSize = 4;
  c.globalBatchSize = 6;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"--global-batch-size", "--micro-batch-size"}));
}

TEST(ModelConfig, RejectsRelativePositionsOutsideT5) {
  ModelConfig c = tinyGpt();
  c.positionEmbeddingType = PositionEmbedding::Relative;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"relative", "T5"}));
}

TEST(ModelConfig, RejectsBadProbabilitiesAndScales) {
  ModelConfig c = tinyGpt();
  c.attentionDropout = 1.0;
  c.hiddenDropout = -0.1;
  c.initMethodStd = 0;
  c.resolveDefaults();
  std::vector<std::string> problems = c.validate();
  EXPECT_TRUE(mentions(problems, {"--attention-dropout"}));
  EXPECT_TRUE(mentions(problems, {"--hidden-dropout"}));
  EXPECT_TRUE(mentions(problems, {"--init-method-std"}));
}

TEST(ModelConfig, RejectsModelsWhoseTensorsCannotBeIndexed) {
  ModelConfig c = tinyGpt();
  c.hiddenSize = int64_t(1) << 40;
  c.numAttentionHeads = 1;
  c.resolveDefaults();
  EXPECT_TRUE(mentions(c.validate(), {"too large"}));
}

TEST(ModelConfig, EveryPresetIsValid) {
  for (const std::string &name : presetNames()) {
    std::optional<ModelConfig> c = presetConfig(name);
    ASSERT_TRUE(c) << name;
    c->resolveDefaults();
    EXPECT_TRUE(c->validate().empty()) << name;
  }
  EXPECT_FALSE(presetConfig("gpt5"));
}

TEST(ModelConfig, NamesRoundTrip) {
  for (ModelKind k : {ModelKind::GPT, ModelKind::BERT, ModelKind::T5})
    EXPECT_EQ(parseModelKind(toString(k)), k);
  for (Normalization n : {Normalization::LayerNorm, Normalization::RMSNorm})
    EXPECT_EQ(parseNormalization(toString(n)), n);
  for (PositionEmbedding p : {PositionEmbedding::LearnedAbsolute, PositionEmbedding::Rope, PositionEmbedding::Relative})
    EXPECT_EQ(parsePositionEmbedding(toString(p)), p);
  EXPECT_FALSE(parseNormalization("layernorm")); // Megatron's spelling is case-sensitive
}

} // namespace
