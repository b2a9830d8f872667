//===- FusedStepsTest.cpp - --mt-fuse-elementwise's GeLU steps on the CPU engine ===//
//
// A GPT-style MLP compiled with and without --mt-fuse-elementwise: the fused plan's linear_gelu and
// linear_grad_input_gelu steps give train_step's loss and every parameter gradient bit for bit as the unfused
// linear/gelu and linear_grad_input/gelu_grad pairs do (fuse-elementwise.test checks whole training runs), and a
// linear_grad_input_gelu step that would accumulate into its output is refused at load time by name: its kernel
// always overwrites, and the compiler never fuses an accumulating input gradient.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "megatron/Plan/PlanBuilder.h"
#include "passes/Passes.h"
#include "runtime/engine/Engine.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <random>

using namespace megatron;
using runtime::Engine;

namespace {

constexpr const char *kMlp = R"mlir(
mt.param @table : tensor<16x8xf32> init <normal(0.02)>
mt.param @w1 : tensor<32x8xf32> init <normal(0.02)>
mt.param @b1 : tensor<32xf32> init <zeros>
mt.param @w2 : tensor<8x32xf32> init <normal(0.02)>
func.func @forward(%tokens: tensor<2x4xi32> {mt.input = "tokens"}, %labels: tensor<2x4xi32> {mt.input = "labels"}) -> tensor<f32> {
  %table = mt.param_ref @table : tensor<16x8xf32>
  %h = mt.embedding %tokens, %table : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  %w1 = mt.param_ref @w1 : tensor<32x8xf32>
  %b1 = mt.param_ref @b1 : tensor<32xf32>
  %u = mt.linear %h, %w1, %b1 : tensor<2x4x8xf32>, tensor<32x8xf32>, tensor<32xf32> -> tensor<2x4x32xf32>
  %a = mt.gelu %u : tensor<2x4x32xf32>
  %w2 = mt.param_ref @w2 : tensor<8x32xf32>
  %v = mt.linear %a, %w2 : tensor<2x4x32xf32>, tensor<8x32xf32> -> tensor<2x4x8xf32>
  %table2 = mt.param_ref @table : tensor<16x8xf32>
  %logits = mt.linear %v, %table2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %loss = mt.cross_entropy %logits, %labels : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
)mlir";

plan::Plan compile(bool fuse) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString<mlir::ModuleOp>(kMlp, &context);
  EXPECT_TRUE(module);
  mlir::PassManager pm(&context);
  pm.addPass(mlir::mt::createMtAutodiff());
  if (fuse)
    pm.addPass(mlir::mt::createMtFuseElementwise());
  EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
  mlir::FailureOr<plan::Plan> compiled = mlir::mt::buildPlan(*module);
  EXPECT_TRUE(mlir::succeeded(compiled));
  return std::move(*compiled);
}

size_t countSteps(const plan::Plan &plan, const std::string &op) {
  const plan::Program *program = plan.program("train_step");
  return size_t(std::count_if(program->steps.begin(), program->steps.end(),
                              [&](const plan::Step &step) { return step.op == op; }));
}

/// Random parameters and inputs (the same for every engine: a fixed seed), train_step once; the loss and the
/// parameter gradients.
std::vector<float> trainStep(Engine &engine) {
  std::mt19937 random(5);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (const plan::Param &p : engine.plan().params)
    for (int64_t i = 0; i < engine.buffer(p.buffer).numElements(); ++i)
      engine.as<float>(p.buffer)[i] = normal(random);
  for (const plan::Input &input : engine.plan().inputs)
    for (int64_t i = 0; i < engine.buffer(input.buffer).numElements(); ++i)
      engine.as<std::int32_t>(input.buffer)[i] = std::int32_t(random() % 16);
  runtime::RunContext context;
  EXPECT_EQ(engine.run("train_step", context), "");
  std::vector<float> values = {engine.as<float>(engine.plan().program("train_step")->loss)[0]};
  for (const plan::Param &p : engine.plan().params)
    values.insert(values.end(), engine.as<float>(p.grad), engine.as<float>(p.grad) + engine.buffer(p.grad).numElements());
  return values;
}

TEST(FusedSteps, GeluFusionsAreBitwiseThePairs) {
  plan::Plan unfused = compile(false), fused = compile(true);
  EXPECT_EQ(countSteps(fused, "linear_gelu"), 1u);
  EXPECT_EQ(countSteps(fused, "linear_grad_input_gelu"), 1u);
  EXPECT_EQ(countSteps(fused, "gelu") + countSteps(fused, "gelu_grad"), 0u);
  std::string error;
  std::unique_ptr<Engine> a = Engine::create(std::move(unfused), error);
  ASSERT_TRUE(a) << error;
  std::unique_ptr<Engine> b = Engine::create(std::move(fused), error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(trainStep(*a), trainStep(*b));
}

TEST(FusedSteps, AnAccumulatingFusedInputGradientIsRefused) {
  plan::Plan plan = compile(true);
  for (plan::Program &program : plan.programs)
    for (plan::Step &step : program.steps)
      if (step.op == "linear_grad_input_gelu")
        step.accumulate[0] = true;
  std::string error;
  EXPECT_FALSE(Engine::create(std::move(plan), error));
  EXPECT_NE(error.find("linear_grad_input_gelu"), std::string::npos) << error;
  EXPECT_NE(error.find("cannot accumulate"), std::string::npos) << error;
}

} // namespace
