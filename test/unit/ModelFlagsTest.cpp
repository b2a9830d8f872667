//===- ModelFlagsTest.cpp - Megatron's flag names on the command line ------===//

#include "megatron/Model/ModelFlags.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <fstream>
#include <gtest/gtest.h>

using namespace megatron;

namespace {

/// One ModelFlags for the process: llvm::cl options are global.
ModelFlags &flags() {
  static ModelFlags instance;
  return instance;
}

/// Parses `args` as a fresh command line and resolves it.
std::optional<ModelConfig> parse(std::vector<const char *> args, std::vector<std::string> &errors) {
  flags();
  llvm::cl::ResetAllOptionOccurrences();
  args.insert(args.begin(), "megatron-model");
  std::string parseErrors;
  llvm::raw_string_ostream os(parseErrors);
  bool parsed = llvm::cl::ParseCommandLineOptions(static_cast<int>(args.size()), args.data(), "", &os);
  os.flush();
  if (!parsed) {
    errors.push_back(parseErrors);
    return std::nullopt;
  }
  return flags().resolve(errors);
}

TEST(ModelFlags, ExplicitFlagsOverrideThePreset) {
  std::vector<std::string> errors;
  auto c = parse({"--preset", "gpt2-small", "--num-layers", "4", "--swiglu", "--micro-batch-size", "2",
                  "--global-batch-size", "8"},
                 errors);
  ASSERT_TRUE(c) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(c->numLayers, 4);
  EXPECT_EQ(c->hiddenSize, 768);
  EXPECT_TRUE(c->swiglu);
  EXPECT_EQ(c->ffnHiddenSize, 2048); // derived after the override: 2/3 of 4·768, rounded to 64
  EXPECT_EQ(c->numMicroBatches(), 4);
}

TEST(ModelFlags, FlagsAloneDescribeAModel) {
  std::vector<std::string> errors;
  auto c = parse({"--model", "bert", "--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4",
                  "--seq-length", "32", "--vocab-size", "1000", "--normalization", "RMSNorm",
                  "--disable-bias-linear", "--bert-no-binary-head"},
                 errors);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, ModelKind::BERT);
  EXPECT_EQ(c->normalization, Normalization::RMSNorm);
  EXPECT_FALSE(c->addBiasLinear);
  EXPECT_FALSE(c->bertBinaryHead);
}

TEST(ModelFlags, ReportsEveryProblemWithItsFlag) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--preset", "gpt2-small", "--normalization", "BatchNorm", "--position-embedding-type",
                      "alibi"},
                     errors));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("--normalization"), std::string::npos);
  EXPECT_NE(errors[1].find("--position-embedding-type"), std::string::npos);
}

TEST(ModelFlags, ModelContradictingPresetIsAnError) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--preset", "bert-base", "--model", "gpt"}, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("contradicts"), std::string::npos);
}

TEST(ModelFlags, UnknownPresetListsTheKnownOnes) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--preset", "gpt4"}, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("gpt2-small"), std::string::npos);
}

TEST(ModelFlags, MissingValueIsAParseError) {
  // llvm::cl prints "for the --hidden-size option: requires a value!" itself; the lit tests check the text.
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--preset", "gpt2-small", "--hidden-size"}, errors));
}

TEST(ModelFlags, VocabularySizeComesFromGpt2VocabJson) {
  std::string vocab = std::string(MEGATRON_SHARED_DATA_DIR) + "/gpt2/vocab.json";
  if (!std::ifstream(vocab))
    GTEST_SKIP() << "shared test data not found at " << vocab;
  std::string error;
  EXPECT_EQ(readVocabSize(vocab, error), 50257);
  std::vector<std::string> errors;
  auto c = parse({"--preset", "gpt2-small", "--vocab-file", vocab.c_str()}, errors);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->paddedVocabSize(), 50304);
}

TEST(ModelFlags, VocabularyFilesThatAreBrokenAreReported) {
  std::string path = testing::TempDir() + "/broken-vocab.json";
  std::ofstream(path) << "{\"a\": 1,";
  std::string error;
  EXPECT_FALSE(readVocabSize(path, error));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  std::ofstream(path, std::ios::trunc) << "[CLS]\n[SEP]\n\nhello\n";
  EXPECT_EQ(readVocabSize(path, error), 3); // a vocab.txt: one token per non-empty line
  EXPECT_FALSE(readVocabSize(path + ".missing", error));
  EXPECT_NE(error.find("cannot read"), std::string::npos);
}

} // namespace
