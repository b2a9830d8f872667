//===- ModelFiguresTest.cpp - Figures from the IR against closed forms -----===//
//
// The compiler derives parameter counts and FLOPs from the generated IR. These tests check them against
// independent references: published parameter counts, a closed-form count written from the architecture, and
// Megatron-LM's own FLOP formula.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "dialects/mt/MtOps.h"
#include "megatron/Analysis/ModelFiguresAnalysis.h"
#include "megatron/Builder/ModelBuilder.h"
#include "megatron/Model/ModelConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace megatron;
using namespace mlir;

namespace {

class ModelFiguresTest : public ::testing::Test {
protected:
  ModelFiguresTest() { context.loadDialect<mt::MtDialect, func::FuncDialect>(); }

  /// Builds, verifies and analyses `config` (resolving its defaults first).
  ModelFigures figuresOf(ModelConfig config) {
    config.resolveDefaults();
    EXPECT_TRUE(config.validate().empty());
    module = mt::buildModel(context, config);
    EXPECT_TRUE(succeeded(verify(*module)));
    FailureOr<ModelFigures> figures = mt::computeModelFigures(*module);
    EXPECT_TRUE(succeeded(figures));
    return succeeded(figures) ? *figures : ModelFigures{};
  }

  ModelConfig preset(const std::string &name) { return *presetConfig(name); }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
};

/// The parameters of a Megatron GPT, counted from the architecture rather than from any IR.
uint64_t closedFormGptParameters(ModelConfig c) {
  c.resolveDefaults();
  uint64_t h = c.hiddenSize, V = c.paddedVocabSize(), n = c.numAttentionHeads, g = c.numQueryGroups,
           d = c.kvChannels, ffn = c.ffnHiddenSize, L = c.numLayers;
  uint64_t bias = c.addBiasLinear ? 1 : 0;
  uint64_t norm = c.normalization == Normalization::LayerNorm ? 2 * h : h;
  uint64_t fc1Out = c.swiglu ? 2 * ffn : ffn;
  uint64_t layer = 2 * norm + h * (n + 2 * g) * d + bias * (n + 2 * g) * d + n * d * h + bias * h + h * fc1Out +
                   bias * fc1Out + ffn * h + bias * h;
  uint64_t embedding = V * h + (c.positionEmbeddingType == PositionEmbedding::LearnedAbsolute
                                    ? static_cast<uint64_t>(c.maxPositionEmbeddings) * h
                                    : 0);
  return embedding + L * layer + norm + (c.untieEmbeddingsAndOutputWeights ? V * h : 0);
}

TEST_F(ModelFiguresTest, Gpt2SizesMatchThePublishedCounts) {
  const std::pair<const char *, uint64_t> published[] = {{"gpt2-small", 124439808},
                                                         {"gpt2-medium", 354823168},
                                                         {"gpt2-large", 774030080},
                                                         {"gpt2-xl", 1557611200}};
  for (auto [name, count] : published) {
    ModelConfig c = preset(name);
    c.makeVocabSizeDivisibleBy = 1; // OpenAI's GPT-2 has the unpadded 50257-token vocabulary
    EXPECT_EQ(figuresOf(c).parameterCount, count) << name;
  }
}

TEST_F(ModelFiguresTest, Llama2SevenBMatchesThePublishedCount) {
  EXPECT_EQ(figuresOf(preset("llama2-7b")).parameterCount, 6738415616u);
}

TEST_F(ModelFiguresTest, GptParametersMatchTheClosedFormAcrossLayerChoices) {
  ModelConfig base;
  base.numLayers = 3;
  base.hiddenSize = 96;
  base.numAttentionHeads = 6;
  base.seqLength = 32;
  base.vocabSize = 1000;
  for (int variant = 0; variant < 32; ++variant) {
    ModelConfig c = base;
    c.swiglu = variant & 1;
    c.untieEmbeddingsAndOutputWeights = variant & 2;
    c.addBiasLinear = !(variant & 4);
    c.normalization = (variant & 8) ? Normalization::RMSNorm : Normalization::LayerNorm;
    if (variant & 16) {
      c.positionEmbeddingType = PositionEmbedding::Rope;
      c.groupQueryAttention = true;
      c.numQueryGroups = 2;
    }
    EXPECT_EQ(figuresOf(c).parameterCount, closedFormGptParameters(c)) << "variant " << variant;
  }
}

TEST_F(ModelFiguresTest, FlopsEqualMegatronsFormula) {
  ModelConfig gqa = preset("llama2-7b");
  gqa.groupQueryAttention = true;
  gqa.numQueryGroups = 8;
  gqa.globalBatchSize = 64;
  gqa.microBatchSize = 2;
  ModelConfig kv = preset("gpt2-small");
  kv.kvChannels = 96; // query projection wider than hidden
  for (ModelConfig c : {preset("gpt2-small"), preset("gpt3-175b"), preset("llama2-7b"), gqa, kv}) {
    ModelFigures f = figuresOf(c);
    c.resolveDefaults();
    double expected = megatronGptFlopsPerIteration(c);
    EXPECT_NEAR(static_cast<double>(f.flopsPerIteration) / expected, 1.0, 1e-12);
    EXPECT_EQ(f.backwardFlopsPerIteration, 2 * f.forwardFlopsPerIteration);
    EXPECT_EQ(f.microBatchesPerIteration, c.numMicroBatches());
  }
}

TEST_F(ModelFiguresTest, StateBytesFollowTheParameterCount) {
  ModelFigures f = figuresOf(preset("gpt2-small"));
  EXPECT_EQ(f.weightDtype, "f32");
  EXPECT_EQ(f.weightBytes, 4 * f.parameterCount);
  EXPECT_EQ(f.gradientBytes, 4 * f.parameterCount);
  EXPECT_EQ(f.optimizerStateBytes, 8 * f.parameterCount);
  EXPECT_EQ(f.modelStateBytes(), 16 * f.parameterCount);
}

TEST_F(ModelFiguresTest, SixteenBitWeightsAddAnF32MasterCopy) {
  const char *ir = R"mlir(
    mt.param @w : tensor<10x10xbf16> init <normal(0.02)>
  )mlir";
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(ir, &context);
  ASSERT_TRUE(parsed);
  FailureOr<ModelFigures> f = mt::computeModelFigures(*parsed);
  ASSERT_TRUE(succeeded(f));
  EXPECT_EQ(f->weightDtype, "bf16");
  EXPECT_EQ(f->weightBytes, 200u);
  EXPECT_EQ(f->gradientBytes, 400u);
  EXPECT_EQ(f->optimizerStateBytes, 1200u);
}

TEST_F(ModelFiguresTest, TiedEmbeddingsAreOneParameter) {
  ModelConfig tied = preset("gpt2-small");
  ModelConfig untied = tied;
  untied.untieEmbeddingsAndOutputWeights = true;
  uint64_t tiedCount = figuresOf(tied).parameterCount;
  EXPECT_FALSE(module->lookupSymbol("output_layer.weight"));
  uint64_t untiedCount = figuresOf(untied).parameterCount;
  EXPECT_TRUE(module->lookupSymbol("output_layer.weight"));
  EXPECT_EQ(untiedCount - tiedCount, 50304u * 768u);
}

TEST_F(ModelFiguresTest, OutputProjectionsGetMegatronsScaledInit) {
  ModelConfig c = preset("gpt2-small");
  figuresOf(c);
  int scaled = 0;
  for (auto param : module->getOps<mt::ParamOp>()) {
    StringRef name = param.getSymName();
    mt::InitAttr init = param.getInit();
    if (name.ends_with("linear_proj.weight") || name.ends_with("linear_fc2.weight")) {
      EXPECT_EQ(init.getKind(), mt::InitKind::ScaledNormal) << name.str();
      EXPECT_NEAR(init.getEffectiveStd(), 0.02 / std::sqrt(2.0 * 12), 1e-15);
      ++scaled;
    } else if (name.ends_with("layernorm.weight")) {
      EXPECT_EQ(init.getKind(), mt::InitKind::Ones) << name.str();
    } else if (name.ends_with(".bias")) {
      EXPECT_EQ(init.getKind(), mt::InitKind::Zeros) << name.str();
    } else {
      EXPECT_EQ(init.getKind(), mt::InitKind::Normal) << name.str();
      EXPECT_EQ(init.getEffectiveStd(), 0.02);
    }
  }
  EXPECT_EQ(scaled, 24);
}

TEST_F(ModelFiguresTest, BertAndT5Verify) {
  for (const char *name : {"bert-base", "bert-large", "t5-base"})
    EXPECT_GT(figuresOf(preset(name)).parameterCount, 0u) << name;
  ModelConfig relative = preset("t5-base");
  relative.positionEmbeddingType = PositionEmbedding::Relative;
  ModelFigures f = figuresOf(relative);
  EXPECT_TRUE(module->lookupSymbol("encoder.relative_position_bias.weight"));
  EXPECT_TRUE(module->lookupSymbol("decoder.relative_position_bias.weight"));
  EXPECT_FALSE(module->lookupSymbol("embedding.position_embeddings.weight"));
  EXPECT_GT(f.parameterCount, 0u);
}

TEST_F(ModelFiguresTest, OverflowIsAnErrorNotAWrongAnswer) {
  // Each tensor is legal, but the FLOPs of 2^20 micro-batches of this model do not fit in 64 bits.
  const char *ir = R"mlir(
    module attributes {mt.num_micro_batches = 1048576 : i64} {
      func.func @f(%x: tensor<65536x65536xf32>, %w: tensor<65536x65536xf32>) -> tensor<65536x65536xf32> {
        %y = mt.linear %x, %w : tensor<65536x65536xf32>, tensor<65536x65536xf32> -> tensor<65536x65536xf32>
        return %y : tensor<65536x65536xf32>
      }
    }
  )mlir";
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(ir, &context);
  ASSERT_TRUE(parsed);
  std::string message;
  ScopedDiagnosticHandler capture(&context, [&](Diagnostic &d) {
    message = d.str();
    return success();
  });
  EXPECT_TRUE(failed(mt::computeModelFigures(*parsed)));
  EXPECT_NE(message.find("overflow"), std::string::npos);
}

} // namespace
