//===- TrainStepGradientTest.cpp - Whole-model gradients vs finite differences ===//
//
// Compiles small models through the real pipeline (megatron-model's builder, mt-autodiff, the plan, the CPU
// engine) in float64, runs @train_step, and checks every parameter's gradient, element by element on a sample,
// against central finite differences of the loss. Dropout stays on: its masks are a pure function of the seed,
// so the loss is a smooth function of the parameters for a fixed seed.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "megatron/Builder/ModelBuilder.h"
#include "megatron/Plan/PlanBuilder.h"
#include "passes/Passes.h"
#include "runtime/engine/Engine.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

using namespace megatron;
using runtime::Engine;

namespace {

/// Compiles mt IR whose floats are f32 to an engine whose float buffers are f64.
std::unique_ptr<Engine> compileF64(std::string text) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  // Every float in these models is f32: retyping the text gives the same model in f64.
  for (size_t at = text.find("f32"); at != std::string::npos; at = text.find("f32", at))
    text.replace(at, 3, "f64");
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  EXPECT_TRUE(module);
  mlir::PassManager pm(&context);
  pm.addPass(mlir::mt::createMtAutodiff());
  EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
  mlir::FailureOr<plan::Plan> compiled = mlir::mt::buildPlan(*module);
  EXPECT_TRUE(mlir::succeeded(compiled));
  std::string error;
  std::unique_ptr<Engine> engine = Engine::create(std::move(*compiled), error);
  EXPECT_TRUE(engine) << error;
  return engine;
}

std::unique_ptr<Engine> compileF64(ModelConfig config) {
  config.resolveDefaults();
  EXPECT_TRUE(config.validate().empty());
  mlir::MLIRContext context;
  context.loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::OwningOpRef<mlir::ModuleOp> built = mlir::mt::buildModel(context, config);
  std::string text;
  llvm::raw_string_ostream os(text);
  built->print(os);
  return compileF64(os.str());
}

/// Random parameters (larger than a real init, so that every path matters) and a random micro-batch.
void randomize(Engine &engine, std::mt19937 &rng) {
  std::normal_distribution<double> normal(0.0, 0.4);
  for (const plan::Param &p : engine.plan().params) {
    double *value = engine.as<double>(p.buffer);
    for (int64_t i = 0; i < engine.buffer(p.buffer).numElements(); ++i)
      value[i] = (p.init == plan::InitKind::Ones ? 1.0 : 0.0) + normal(rng);
  }
  int64_t vocab = 1; // a model without an embedding table has its labels set by the test
  for (const plan::Param &p : engine.plan().params)
    if (p.name == "embedding.word_embeddings.weight")
      vocab = engine.buffer(p.buffer).shape[0];
  for (const plan::Input &input : engine.plan().inputs) {
    const plan::Buffer &b = engine.buffer(input.buffer);
    int64_t n = b.numElements();
    if (b.dtype == plan::DType::F64) { // loss_mask: mostly on
      for (int64_t i = 0; i < n; ++i)
        engine.as<double>(input.buffer)[i] = (rng() % 4 != 0) ? 1.0 : 0.0;
      engine.as<double>(input.buffer)[0] = 1.0;
      continue;
    }
    bool binary = input.name.find("mask") != std::string::npos || input.name == "tokentype_ids" ||
                  input.name == "sentence_order";
    int32_t *ids = engine.as<int32_t>(input.buffer);
    for (int64_t i = 0; i < n; ++i)
      ids[i] = static_cast<int32_t>(binary ? (rng() % 5 != 0) : rng() % vocab);
    if (input.name.find("padding_mask") != std::string::npos) // every sequence keeps its first token
      for (int64_t row = 0; row < b.shape[0]; ++row)
        ids[row * b.shape[1]] = 1;
  }
}

double lossAt(Engine &engine, const runtime::RunContext &context) {
  std::string error = engine.run("train_step", context);
  EXPECT_EQ(error, "");
  return engine.loss("train_step");
}

/// Checks every parameter's gradient on up to `samples` elements each; returns how many were checked.
int checkGradients(Engine &engine, std::mt19937 &rng, int samples) {
  runtime::RunContext context{true, 1234};
  lossAt(engine, context);
  std::map<std::string, std::vector<double>> analytic;
  for (const plan::Param &p : engine.plan().params) {
    const double *grad = engine.as<double>(p.grad);
    analytic[p.name].assign(grad, grad + engine.buffer(p.grad).numElements());
  }
  int checked = 0;
  const double eps = 1e-5;
  for (const plan::Param &p : engine.plan().params) {
    double *value = engine.as<double>(p.buffer);
    int64_t n = engine.buffer(p.buffer).numElements();
    for (int s = 0; s < samples; ++s) {
      int64_t i = rng() % n;
      double saved = value[i];
      value[i] = saved + eps;
      double plus = lossAt(engine, context);
      value[i] = saved - eps;
      double minus = lossAt(engine, context);
      value[i] = saved;
      double numeric = (plus - minus) / (2 * eps);
      double exact = analytic[p.name][i];
      double scale = std::max({std::abs(numeric), std::abs(exact), 1e-4});
      EXPECT_LT(std::abs(numeric - exact) / scale, 1e-6)
          << p.name << "[" << i << "]: finite difference " << numeric << ", autodiff " << exact;
      ++checked;
    }
  }
  return checked;
}

ModelConfig tinyGpt() {
  ModelConfig c;
  c.numLayers = 2;
  c.hiddenSize = 16;
  c.numAttentionHeads = 4;
  c.seqLength = 8;
  c.vocabSize = 40;
  c.makeVocabSizeDivisibleBy = 8;
  c.microBatchSize = 2;
  return c;
}

// Cross-attention: fewer queries than keys, with a padding mask over the keys.
TEST(TrainStepGradient, CrossAttentionWithShorterQueries) {
  std::unique_ptr<Engine> engine = compileF64(R"mlir(
    mt.param @q : tensor<2x3x4x4xf32> init <normal(0.02)>
    mt.param @kv : tensor<2x5x2x4xf32> init <normal(0.02)>
    mt.param @w : tensor<7x16xf32> init <normal(0.02)>
    func.func @forward(%mask: tensor<2x5xi32> {mt.input = "padding_mask"}, %labels: tensor<2x3xi32> {mt.input = "labels"}) -> tensor<f32> {
      %q = mt.param_ref @q : tensor<2x3x4x4xf32>
      %kv = mt.param_ref @kv : tensor<2x5x2x4xf32>
      %o = mt.attention padding %q, %kv, %kv mask(%mask : tensor<2x5xi32>) {num_heads = 4 : i64, num_query_groups = 2 : i64, softmax_scale = 0.5 : f64} : tensor<2x3x4x4xf32>, tensor<2x5x2x4xf32>, tensor<2x5x2x4xf32>
      %m = mt.merge_heads %o : tensor<2x3x4x4xf32> -> tensor<2x3x16xf32>
      %w = mt.param_ref @w : tensor<7x16xf32>
      %logits = mt.linear %m, %w : tensor<2x3x16xf32>, tensor<7x16xf32> -> tensor<2x3x7xf32>
      %loss = mt.cross_entropy %logits, %labels : tensor<2x3x7xf32>, tensor<2x3xi32> -> tensor<f32>
      return %loss : tensor<f32>
    })mlir");
  ASSERT_TRUE(engine);
  std::mt19937 rng(5);
  randomize(*engine, rng);
  int32_t *labels = engine->as<int32_t>(engine->plan().inputs[1].buffer);
  for (int i = 0; i < 6; ++i)
    labels[i] = rng() % 7;
  EXPECT_GT(checkGradients(*engine, rng, 8), 20);
}

TEST(TrainStepGradient, GptWithLayerNormGeluLearnedPositionsAndDropout) {
  std::mt19937 rng(1);
  std::unique_ptr<Engine> engine = compileF64(tinyGpt());
  ASSERT_TRUE(engine);
  randomize(*engine, rng);
  EXPECT_GT(checkGradients(*engine, rng, 3), 50);
}

TEST(TrainStepGradient, GptWithRmsNormSwigluRopeAndGqa) {
  ModelConfig c = tinyGpt();
  c.normalization = Normalization::RMSNorm;
  c.swiglu = true;
  c.ffnHiddenSize = 24;
  c.positionEmbeddingType = PositionEmbedding::Rope;
  c.groupQueryAttention = true;
  c.numQueryGroups = 2;
  c.untieEmbeddingsAndOutputWeights = true;
  c.addBiasLinear = false;
  c.attentionDropout = c.hiddenDropout = 0.0;
  std::mt19937 rng(2);
  std::unique_ptr<Engine> engine = compileF64(c);
  ASSERT_TRUE(engine);
  randomize(*engine, rng);
  EXPECT_GT(checkGradients(*engine, rng, 3), 30);
}

TEST(TrainStepGradient, BertWithPaddingPoolerAndSentenceOrder) {
  ModelConfig c = tinyGpt();
  c.kind = ModelKind::BERT;
  c.numLayers = 1;
  std::mt19937 rng(3);
  std::unique_ptr<Engine> engine = compileF64(c);
  ASSERT_TRUE(engine);
  randomize(*engine, rng);
  EXPECT_GT(checkGradients(*engine, rng, 3), 30);
}

TEST(TrainStepGradient, T5WithRelativeBiasAndCrossAttention) {
  ModelConfig c = tinyGpt();
  c.kind = ModelKind::T5;
  c.encoderNumLayers = c.decoderNumLayers = 1;
  c.decoderSeqLength = 4;
  c.positionEmbeddingType = PositionEmbedding::Relative;
  c.relativeAttentionNumBuckets = 8;
  c.relativeAttentionMaxDistance = 16;
  std::mt19937 rng(4);
  std::unique_ptr<Engine> engine = compileF64(c);
  ASSERT_TRUE(engine);
  randomize(*engine, rng);
  EXPECT_GT(checkGradients(*engine, rng, 3), 30);
}

} // namespace
