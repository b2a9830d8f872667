//===- TensorParallelParityTest.cpp - tp=t training steps against tp=1 ======//
//
// Compiles one model twice through the real pipeline (the builder, mt-shard, mt-autodiff, the plan), for one rank
// and for t tensor-parallel ranks (with and without sequence parallelism), and runs one training iteration on
// both from the same whole weights and batches: two micro-batches of train_step, then finalize_grads. The t ranks
// are threads joined by the thread communicator, each with its own engine over its shards. Every rank's loss must
// be the tp=1 loss, and every element of every rank's gradient buffer (replicated parameters and shared key/value
// heads included) the tp=1 gradient's element at the same place of the whole tensor, to 1e-5 of that tensor's
// largest magnitude (f32). Dropout is on in the GPT: the sharded steps draw the unsharded masks by design. BERT
// and T5 run through the rules' generic paths (a pooler and a token-type table that run replicated, a binary
// head, cross-attention on a gathered encoder output, a relative position bias sliced to each rank's heads).
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "megatron/Builder/ModelBuilder.h"
#include "megatron/Plan/PlanBuilder.h"
#include "passes/Passes.h"
#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/engine/Engine.h"
#include "runtime/train/Shards.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <random>

using namespace megatron;
using runtime::Engine;

namespace {

enum class Family { Gpt, Llama, Bert, T5 };

ModelConfig configOf(Family family) {
  ModelConfig c;
  c.numLayers = 2;
  c.hiddenSize = 32;
  c.numAttentionHeads = 8;
  c.seqLength = 8;
  c.vocabSize = 64;
  c.makeVocabSizeDivisibleBy = 8;
  c.microBatchSize = 2;
  c.globalBatchSize = 4;
  if (family == Family::Llama) {
    c.normalization = Normalization::RMSNorm;
    c.swiglu = true;
    c.ffnHiddenSize = 32;
    c.positionEmbeddingType = PositionEmbedding::Rope;
    c.groupQueryAttention = true;
    c.numQueryGroups = 2; // fewer than 4 or 8 ranks: key/value heads are replicated
    c.untieEmbeddingsAndOutputWeights = true;
    c.addBiasLinear = false;
    c.attentionDropout = c.hiddenDropout = 0.0;
  }
  if (family == Family::Bert) {
    c.kind = ModelKind::BERT;
    c.numLayers = 1;
  }
  if (family == Family::T5) {
    c.kind = ModelKind::T5;
    c.numLayers = 0;
    c.encoderNumLayers = c.decoderNumLayers = 1;
    c.decoderSeqLength = 8;
    c.positionEmbeddingType = PositionEmbedding::Relative;
    c.relativeAttentionNumBuckets = 8;
    c.relativeAttentionMaxDistance = 16;
  }
  // The GPT keeps Megatron's defaults: LayerNorm, GeLU, learned positions, biases, dropout 0.1 everywhere.
  return c;
}

plan::Plan compile(ModelConfig config, int64_t tensor, bool sequence) {
  config.resolveDefaults();
  std::vector<std::string> problems = config.validate();
  EXPECT_TRUE(problems.empty()) << problems.front();
  mlir::MLIRContext context;
  context.loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::mt::buildModel(context, config);
  mlir::PassManager pm(&context);
  if (tensor > 1)
    pm.addPass(mlir::mt::createMtShard(mlir::mt::MtShardOptions{tensor, sequence}));
  pm.addPass(mlir::mt::createMtAutodiff());
  EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
  mlir::FailureOr<plan::Plan> compiled = mlir::mt::buildPlan(*module);
  EXPECT_TRUE(mlir::succeeded(compiled));
  return mlir::succeeded(compiled) ? std::move(*compiled) : plan::Plan();
}

/// Whole tensors by name: the weights (random around the init, larger than a real init so that every path
/// matters, biases and norm weights included), or the tp=1 gradients.
using Tensors = std::map<std::string, std::vector<float>>;

Tensors randomWeights(const plan::Plan &plan) {
  Tensors weights;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  for (const plan::Param &p : plan.params) {
    int64_t n = train::wholeElements(p, plan.buffers[static_cast<size_t>(p.buffer)].numElements());
    std::vector<float> &w = weights[p.name];
    w.resize(static_cast<size_t>(n));
    for (float &x : w)
      x = (p.init == plan::InitKind::Ones ? 1.0f : 0.0f) + normal(rng);
  }
  return weights;
}

constexpr int kMicroBatches = 2;
constexpr uint64_t kSeed = 7;

/// The micro-batches: every input of the plan by name, random where it is data (ids below the vocabulary, token
/// types and sentence-order labels below 2), masks that skip a few positions but never a whole row's first.
using Batch = std::map<std::string, std::vector<float>>; // int inputs are stored as floats and converted

std::vector<Batch> randomBatches(const plan::Plan &plan, const ModelConfig &config) {
  std::mt19937 rng(23);
  std::vector<Batch> batches(kMicroBatches);
  for (Batch &b : batches)
    for (const plan::Input &input : plan.inputs) {
      const plan::Buffer &buffer = plan.buffers[static_cast<size_t>(input.buffer)];
      int64_t row = buffer.shape.back();
      std::vector<float> &values = b[input.name];
      for (int64_t i = 0; i < buffer.numElements(); ++i) {
        bool mask = input.name.find("mask") != std::string::npos;
        bool binary = input.name == "tokentype_ids" || input.name == "sentence_order";
        values.push_back(mask     ? (i % row == 0 || rng() % 5 != 0 ? 1.0f : 0.0f)
                         : binary ? static_cast<float>(rng() % 2)
                                  : static_cast<float>(rng() % config.vocabSize));
      }
    }
  return batches;
}

/// What one rank's iteration leaves: the micro-batches' losses and its gradient buffers.
struct RankResult {
  std::vector<double> losses;
  Tensors grads; // local
};

/// One iteration on one rank: the rank's spans of the whole weights, the micro-batches, then finalize_grads.
std::string runIteration(Engine &engine, const Tensors &weights, const std::vector<Batch> &batches,
                         RankResult &result) {
  const int rank = engine.parallelRank().tpRank;
  for (const plan::Param &p : engine.plan().params) {
    const std::vector<float> &whole = weights.at(p.name);
    float *local = engine.as<float>(p.buffer);
    for (const train::ShardRun &run : train::shardRuns(p, rank, engine.buffer(p.buffer).numElements()))
      std::copy_n(whole.begin() + run.whole, run.length, local + run.local);
  }
  engine.zero(plan::Arena::Grads);
  for (int m = 0; m < kMicroBatches; ++m) {
    for (const plan::Input &input : engine.plan().inputs) {
      const std::vector<float> &values = batches[m].at(input.name);
      if (engine.buffer(input.buffer).dtype == plan::DType::I32)
        std::transform(values.begin(), values.end(), engine.as<int32_t>(input.buffer),
                       [](float v) { return static_cast<int32_t>(v); });
      else
        std::copy(values.begin(), values.end(), engine.as<float>(input.buffer));
    }
    runtime::RunContext context{true, runtime::dropoutSeedFor(kSeed, 1, m)};
    if (std::string error = engine.run("train_step", context); !error.empty())
      return error;
    result.losses.push_back(engine.loss("train_step"));
  }
  if (engine.plan().program("finalize_grads"))
    if (std::string error = engine.run("finalize_grads", runtime::RunContext{}); !error.empty())
      return error;
  for (const plan::Param &p : engine.plan().params) {
    const float *g = engine.as<float>(p.grad);
    result.grads[p.name].assign(g, g + engine.buffer(p.grad).numElements());
  }
  return {};
}

struct ParityCase {
  Family family;
  int tensor;
  bool sequence;
};

std::string nameOf(const testing::TestParamInfo<ParityCase> &info) {
  const char *names[] = {"Gpt", "Llama", "Bert", "T5"};
  return std::string(names[static_cast<int>(info.param.family)]) + "Tp" +
         std::to_string(info.param.tensor) + (info.param.sequence ? "Sp" : "");
}

void PrintTo(const ParityCase &c, std::ostream *os) {
  const char *names[] = {"GPT", "LLaMA-style", "BERT", "T5"};
  *os << names[static_cast<int>(c.family)] << ", tp=" << c.tensor
      << (c.sequence ? ", sequence parallel" : "");
}

class TensorParallelParity : public testing::TestWithParam<ParityCase> {};

TEST_P(TensorParallelParity, LossAndEveryGradientMatchOneRank) {
  const ParityCase c = GetParam();
  const ModelConfig config = configOf(c.family);
  plan::Plan one = compile(config, 1, false), sharded = compile(config, c.tensor, c.sequence);
  ASSERT_EQ(sharded.parallel.tensor, c.tensor);
  ASSERT_EQ(sharded.parallel.sequence, c.sequence);
  const Tensors weights = randomWeights(one);
  const std::vector<Batch> batches = randomBatches(one, config);

  cpu::setNumThreads(1);
  std::string error;
  std::unique_ptr<Engine> reference = Engine::create(one, error);
  ASSERT_TRUE(reference) << error;
  RankResult expected;
  ASSERT_EQ(runIteration(*reference, weights, batches, expected), "");

  std::vector<RankResult> ranks(static_cast<size_t>(c.tensor));
  error = comm::runRanks(
      c.tensor,
      [&](int rank, comm::Communicator &world) -> std::string {
        cpu::setNumThreads(1);
        std::string failure;
        std::unique_ptr<comm::Communicator> tp = world.split(0, rank, "tp", failure);
        if (!tp)
          return failure;
        std::unique_ptr<Engine> engine = Engine::create(sharded, failure, tp.get());
        if (!engine)
          return failure;
        return runIteration(*engine, weights, batches, ranks[static_cast<size_t>(rank)]);
      },
      comm::ThreadWorldOptions{std::chrono::milliseconds(60'000)});
  ASSERT_EQ(error, "");

  double worstLoss = 0, worstGrad = 0;
  std::string worstName;
  for (int r = 0; r < c.tensor; ++r) {
    const RankResult &got = ranks[static_cast<size_t>(r)];
    ASSERT_EQ(got.losses.size(), expected.losses.size());
    for (size_t m = 0; m < got.losses.size(); ++m) {
      double relative = std::fabs(got.losses[m] - expected.losses[m]) / std::fabs(expected.losses[m]);
      worstLoss = std::max(worstLoss, relative);
      EXPECT_LT(relative, 1e-5) << "rank " << r << ", micro-batch " << m << ": loss " << got.losses[m]
                                << ", tp=1 " << expected.losses[m];
    }
  }
  for (const plan::Param &p : sharded.params) {
    SCOPED_TRACE(p.name);
    const std::vector<float> &whole = expected.grads.at(p.name);
    double scale = 0;
    for (float g : whole)
      scale = std::max(scale, std::fabs(double(g)));
    ASSERT_GT(scale, 0.0) << "a zero gradient checks nothing";
    int64_t local = sharded.buffers[static_cast<size_t>(p.grad)].numElements(), owned = 0;
    double diff = 0;
    for (int r = 0; r < c.tensor; ++r) {
      const std::vector<float> &g = ranks[static_cast<size_t>(r)].grads.at(p.name);
      for (const train::ShardRun &run : train::shardRuns(p, r, local))
        for (int64_t k = 0; k < run.length; ++k)
          diff = std::max(diff, std::fabs(double(g[run.local + k]) - double(whole[run.whole + k])));
      for (const train::ShardRun &run : train::ownedRuns(p, r, local))
        owned += run.length;
    }
    EXPECT_EQ(owned, static_cast<int64_t>(whole.size())) << "the ranks' owned elements cover the tensor once";
    EXPECT_LT(diff / scale, 1e-5) << "largest difference " << diff << ", gradient scale " << scale;
    if (diff / scale > worstGrad) {
      worstGrad = diff / scale;
      worstName = p.name;
    }
  }
  std::printf("%s: loss relative error %.2e, worst gradient relative error %.2e (%s)\n",
              nameOf(testing::TestParamInfo<ParityCase>(c, 0)).c_str(), worstLoss, worstGrad, worstName.c_str());
  RecordProperty("max_gradient_error", std::to_string(worstGrad));
}

std::vector<ParityCase> allCases() {
  std::vector<ParityCase> cases;
  for (Family family : {Family::Gpt, Family::Llama, Family::Bert, Family::T5})
    for (int tensor : {2, 4, 8})
      for (bool sequence : {false, true})
        cases.push_back({family, tensor, sequence});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Layouts, TensorParallelParity, testing::ValuesIn(allCases()), nameOf);

} // namespace
