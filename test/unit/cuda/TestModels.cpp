//===- TestModels.cpp - The plans of the CUDA tests' two models ----------------===//

#include "TestModels.h"

#include "dialects/mt/MtDialect.h"
#include "megatron/Builder/ModelBuilder.h"
#include "megatron/Plan/PlanBuilder.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

namespace megatron::test {

namespace {

/// The model through the compiler's passes: one plan, or one per pipeline stage when `stages` > 1 (each with
/// `virtualStages` model chunks); `distributedOptimizer` shards the optimizer (with `data` > 1), `fuse` adds
/// --mt-fuse-elementwise after autodiff.
std::vector<plan::Plan> compileStages(ModelConfig config, const char *precision, int64_t tensor, bool sequence,
                                      int64_t data, int64_t stages, bool distributedOptimizer = false,
                                      bool fuse = false, int64_t virtualStages = 1) {
  config.resolveDefaults();
  std::string problems;
  for (const std::string &problem : config.validate())
    problems += problem + "; ";
  mlir::MLIRContext context;
  context.loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::mt::buildModel(context, config);
  mlir::PassManager pm(&context);
  if (tensor > 1 || data > 1)
    pm.addPass(mlir::mt::createMtShard(mlir::mt::MtShardOptions{tensor, sequence, data, distributedOptimizer}));
  if (stages > 1) {
    mlir::mt::MtPipelineOptions pipeline;
    pipeline.stages = stages;
    pipeline.virtualStages = virtualStages;
    pm.addPass(mlir::mt::createMtPipeline(pipeline));
  }
  if (*precision)
    pm.addPass(mlir::mt::createMtMixedPrecision(mlir::mt::MtMixedPrecisionOptions{precision}));
  pm.addPass(mlir::mt::createMtAutodiff());
  if (fuse)
    pm.addPass(mlir::mt::createMtFuseElementwise());
  mlir::FailureOr<std::vector<plan::Plan>> plans = mlir::failure();
  if (problems.empty() && module && mlir::succeeded(pm.run(*module))) {
    if (stages > 1) {
      plans = mlir::mt::buildPlans(*module);
    } else if (mlir::FailureOr<plan::Plan> one = mlir::mt::buildPlan(*module); mlir::succeeded(one)) {
      plans = std::vector<plan::Plan>();
      plans->push_back(std::move(*one));
    }
  }
  if (mlir::failed(plans)) {
    std::fprintf(stderr, "the test model does not compile: %s\n", problems.c_str());
    std::abort();
  }
  return std::move(*plans);
}

plan::Plan compile(ModelConfig config, const char *precision = "", int64_t tensor = 1, bool sequence = false,
                   int64_t data = 1) {
  return std::move(compileStages(std::move(config), precision, tensor, sequence, data, 1).front());
}

ModelConfig tinyGpt() {
  ModelConfig c;
  c.numLayers = 2;
  c.hiddenSize = 64;
  c.numAttentionHeads = 4;
  c.seqLength = 32;
  c.vocabSize = 120;
  c.makeVocabSizeDivisibleBy = 64;
  c.microBatchSize = 2;
  return c;
}

} // namespace

plan::Plan compileModel(ModelConfig config, const char *precision) { return compile(std::move(config), precision); }

std::vector<plan::Plan> compileParallelModel(ModelConfig config, const ParallelLayout &layout) {
  return compileStages(std::move(config), layout.precision, layout.tensor, layout.sequence, layout.data,
                       layout.stages, layout.distributedOptimizer, /*fuse=*/false, layout.virtualStages);
}

const plan::Plan &gptPlan() {
  static const plan::Plan plan = compile(tinyGpt());
  return plan;
}

const plan::Plan &gptPlan(plan::DType compute) {
  // Fused as the benchmarks compile it (--mt-fuse-elementwise): dropout_add's kernels and the GeLU epilogues of
  // linear_gelu and linear_grad_input_gelu are checked here.
  static const plan::Plan bf16 = std::move(
      compileStages(tinyGpt(), "bf16", 1, false, 1, 1, /*distributedOptimizer=*/false, /*fuse=*/true).front());
  return compute == plan::DType::BF16 ? bf16 : gptPlan();
}

ModelConfig llamaConfig() {
    ModelConfig c = tinyGpt();
    c.normalization = Normalization::RMSNorm;
    c.swiglu = true;
    c.ffnHiddenSize = 96;
    c.positionEmbeddingType = PositionEmbedding::Rope;
    c.groupQueryAttention = true;
    c.numQueryGroups = 2;
    c.untieEmbeddingsAndOutputWeights = true;
    c.addBiasLinear = false;
    c.attentionDropout = c.hiddenDropout = 0.0;
    return c;
}

const plan::Plan &llamaPlan() {
  static const plan::Plan plan = compile(llamaConfig());
  return plan;
}

const plan::Plan &llamaPlan(plan::DType compute) {
  static const plan::Plan bf16 = compile(llamaConfig(), "bf16"), f16 = compile(llamaConfig(), "fp16");
  return compute == plan::DType::BF16 ? bf16 : compute == plan::DType::F16 ? f16 : llamaPlan();
}

const plan::Plan &oddGptPlan(int64_t tensor) {
  auto config = [](int64_t ranks) {
    ModelConfig c = tinyGpt();
    c.tensorModelParallelSize = ranks; // pads the vocabulary to a multiple of the ranks
    c.hiddenSize = 30;
    c.numAttentionHeads = 2;
    c.seqLength = 6;
    c.microBatchSize = 3;
    c.vocabSize = 101;
    c.makeVocabSizeDivisibleBy = 1;
    return c;
  };
  static const plan::Plan one = compile(config(1)), two = compile(config(2), "", 2, true);
  return tensor == 2 ? two : one;
}

ModelConfig bertConfig() {
  ModelConfig c = tinyGpt();
  c.kind = ModelKind::BERT;
  c.seqLength = 24;
  return c;
}

ModelConfig t5Config() {
  ModelConfig c = tinyGpt();
  c.kind = ModelKind::T5;
  c.numLayers = 0;
  c.encoderNumLayers = 1;
  c.decoderNumLayers = 1;
  c.seqLength = 20;
  c.decoderSeqLength = 12;
  c.positionEmbeddingType = PositionEmbedding::Relative;
  return c;
}

const plan::Plan &bertPlan(int64_t tensor) {
  static const plan::Plan one = compile(bertConfig()), two = compile(bertConfig(), "", 2, true);
  return tensor == 2 ? two : one;
}

const plan::Plan &t5Plan(int64_t tensor) {
  static const plan::Plan one = compile(t5Config()), two = compile(t5Config(), "", 2, false);
  return tensor == 2 ? two : one;
}

const plan::Plan &shardedGptPlan() {
  static const plan::Plan plan = compile(tinyGpt(), "", 2, true);
  return plan;
}

const plan::Plan &shardedLlamaPlan() {
  static const plan::Plan plan = compile(llamaConfig(), "", 2, false);
  return plan;
}

const plan::Plan &parallelGptPlan(int64_t tensor, int64_t data, plan::DType compute) {
  static std::map<std::tuple<int64_t, int64_t, plan::DType>, plan::Plan> plans;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, added] = plans.try_emplace({tensor, data, compute});
  if (added) {
    ModelConfig c = tinyGpt();
    c.globalBatchSize = 2 * c.microBatchSize * data; // two micro-batches per replica
    const char *precision = compute == plan::DType::BF16 ? "bf16" : compute == plan::DType::F16 ? "fp16" : "";
    it->second = compile(c, precision, tensor, tensor > 1, data);
  }
  return it->second;
}

const std::vector<plan::Plan> &pipelineGptPlans(int64_t stages) {
  static std::map<int64_t, std::vector<plan::Plan>> plans;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, added] = plans.try_emplace(stages);
  if (added) {
    ModelConfig c = tinyGpt();
    c.globalBatchSize = 2 * c.microBatchSize; // two micro-batches in flight
    it->second = compileStages(c, "", 1, false, 1, stages);
  }
  return it->second;
}

} // namespace megatron::test
