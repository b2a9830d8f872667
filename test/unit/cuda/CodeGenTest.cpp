//===- CodeGenTest.cpp - The CUDA code generator on the test models' plans ===//
//
// What the generator promises without compiling anything: every step of the two test models goes to a backend,
// every non-GEMM, non-attention op gets kernels, equal steps share kernels, names and sources are stable, and the
// storage types of the plan's buffers become the kernels' parameter types.
//
//===----------------------------------------------------------------------===//

#include "TestModels.h"

#include "megatron/CodeGen/CudaKernels.h"

#include <gtest/gtest.h>
#include <set>

using namespace megatron;
using namespace megatron::codegen;

namespace {

std::set<std::string> opsWith(const KernelSet &set, StepBackend backend) {
  std::set<std::string> ops;
  for (const StepPlan &step : set.steps)
    if (step.backend == backend)
      ops.insert(step.op);
  return ops;
}

// Every step of every program is planned; generated steps have kernels whose recorded steps include them.
void expectEveryStepPlanned(const plan::Plan &plan, const KernelSet &set) {
  size_t steps = 0;
  for (const plan::Program &program : plan.programs)
    steps += program.steps.size();
  ASSERT_EQ(set.steps.size(), steps);
  for (const StepPlan &step : set.steps) {
    if (step.backend != StepBackend::Generated) {
      EXPECT_TRUE(step.kernels.empty()) << step.op;
      continue;
    }
    ASSERT_FALSE(step.kernels.empty()) << step.op;
    for (int k : step.kernels) {
      const std::vector<StepRef> &refs = set.kernels.at(k).steps;
      EXPECT_NE(std::find(refs.begin(), refs.end(), step.ref), refs.end()) << set.kernels[k].name;
    }
  }
}

void expectWellFormed(const plan::Plan &plan, const KernelSet &set) {
  std::set<std::string> names;
  for (const CudaKernel &kernel : set.kernels) {
    EXPECT_TRUE(names.insert(kernel.name).second) << "two kernels named " << kernel.name;
    EXPECT_EQ(kernel.name.rfind("mt_" + kernel.op, 0), 0u) << kernel.name;
    EXPECT_NE(kernel.source.find("extern \"C\" __global__ void __launch_bounds__"), std::string::npos);
    EXPECT_NE(kernel.source.find(kernel.name + "("), std::string::npos) << kernel.name;
    int threads = kernel.launch.block[0] * kernel.launch.block[1] * kernel.launch.block[2];
    EXPECT_GE(threads, 1);
    EXPECT_LE(threads, 1024);
    for (int64_t g : kernel.launch.grid)
      EXPECT_GE(g, 1) << kernel.name;
    // Every operand a kernel takes exists in each step it implements.
    for (const StepRef &ref : kernel.steps) {
      const plan::Step &step = plan.program(ref.program)->steps.at(ref.step);
      for (const KernelArg &arg : kernel.args) {
        if (arg.source != ArgSource::Input && arg.source != ArgSource::Output)
          continue;
        size_t operands = arg.source == ArgSource::Input ? step.inputs.size() : step.outputs.size();
        EXPECT_LT(size_t(arg.index), operands) << kernel.name << " " << arg.name;
      }
    }
  }
}

TEST(CudaCodeGen, GptStepsAllHaveABackend) {
  const plan::Plan &plan = test::gptPlan();
  KernelSet set = generateKernels(plan);
  expectEveryStepPlanned(plan, set);
  expectWellFormed(plan, set);
  EXPECT_EQ(opsWith(set, StepBackend::Generated),
            (std::set<std::string>{"add", "add_position_embedding", "attention", "attention_grad", "cross_entropy", "cross_entropy_grad", "dropout",
                                   "embedding", "embedding_grad", "fill", "gelu", "gelu_grad", "layer_norm",
                                   "layer_norm_grad", "merge_qkv", "position_embedding_grad", "split_qkv",
                                   "sum_rows"}));
  EXPECT_EQ(opsWith(set, StepBackend::CublasLt),
            (std::set<std::string>{"linear", "linear_grad_input", "linear_grad_weight"}));
  EXPECT_EQ(opsWith(set, StepBackend::Missing), (std::set<std::string>{}));
}

// The bf16 GPT is compiled with --mt-fuse-elementwise: its MLP's GeLU rides on the GEMMs (cuBLASLt's GELU_AUX_BIAS
// and DGELU epilogues), so no GeLU kernel is generated, and the residual dropouts are dropout_add kernels.
TEST(CudaCodeGen, FusedGptGeluRidesOnTheGemms) {
  const plan::Plan &plan = test::gptPlan(plan::DType::BF16);
  KernelSet set = generateKernels(plan);
  expectEveryStepPlanned(plan, set);
  expectWellFormed(plan, set);
  EXPECT_EQ(opsWith(set, StepBackend::CublasLt),
            (std::set<std::string>{"linear", "linear_gelu", "linear_grad_input", "linear_grad_input_gelu",
                                   "linear_grad_weight"}));
  std::set<std::string> generated = opsWith(set, StepBackend::Generated);
  EXPECT_FALSE(generated.count("gelu"));
  EXPECT_FALSE(generated.count("gelu_grad"));
  EXPECT_TRUE(generated.count("dropout_add"));
  EXPECT_EQ(opsWith(set, StepBackend::Missing), (std::set<std::string>{}));
}

TEST(CudaCodeGen, LlamaStepsAllHaveABackend) {
  const plan::Plan &plan = test::llamaPlan();
  KernelSet set = generateKernels(plan);
  expectEveryStepPlanned(plan, set);
  expectWellFormed(plan, set);
  std::set<std::string> generated = opsWith(set, StepBackend::Generated);
  for (const char *op : {"rms_norm", "rms_norm_grad", "swiglu", "swiglu_grad", "rope", "rope_grad", "split_qkv",
                         "merge_qkv", "embedding", "embedding_grad", "cross_entropy", "cross_entropy_grad"})
    EXPECT_TRUE(generated.count(op)) << op;
  EXPECT_EQ(opsWith(set, StepBackend::Missing), (std::set<std::string>{}));
}

TEST(CudaCodeGen, EqualStepsShareAKernelAndNamesAreStable) {
  const plan::Plan &plan = test::gptPlan();
  KernelSet first = generateKernels(plan), second = generateKernels(plan);
  ASSERT_EQ(first.kernels.size(), second.kernels.size());
  for (size_t i = 0; i < first.kernels.size(); ++i) {
    EXPECT_EQ(first.kernels[i].name, second.kernels[i].name);
    EXPECT_EQ(first.kernels[i].source, second.kernels[i].source);
  }
  // Both layers' forward layer norms (and the final one) have the same shape: one kernel serves them all.
  size_t layerNormSteps = 0;
  std::set<int> layerNormKernels;
  for (const StepPlan &step : first.steps)
    if (step.op == "layer_norm" && step.ref.program == "train_step") {
      ++layerNormSteps;
      layerNormKernels.insert(step.kernels.begin(), step.kernels.end());
    }
  EXPECT_GE(layerNormSteps, 5u);
  EXPECT_EQ(layerNormKernels.size(), 1u);
  EXPECT_LT(first.kernels.size(), first.steps.size() / 2);
}

TEST(CudaCodeGen, DropoutStreamIsAnArgumentAndTheShapeAConstant) {
  KernelSet set = generateKernels(test::gptPlan());
  bool found = false;
  for (const CudaKernel &kernel : set.kernels) {
    if (kernel.op != "dropout")
      continue;
    found = true;
    std::vector<std::string> runtime;
    for (const KernelArg &arg : kernel.args)
      if (arg.source != ArgSource::Input && arg.source != ArgSource::Output)
        runtime.push_back(arg.name);
    EXPECT_EQ(runtime, (std::vector<std::string>{"dropout_seed", "training", "rng_stream"}));
    // The threshold of rate 0.1: ceil(0.1·2^32).
    EXPECT_NE(kernel.source.find("429496730ull"), std::string::npos) << kernel.source;
  }
  EXPECT_TRUE(found);
}

TEST(CudaCodeGen, StorageTypesBecomeParameterTypes) {
  for (auto [type, cType] : {std::pair{plan::DType::BF16, "__nv_bfloat16"}, std::pair{plan::DType::F16, "__half"}}) {
    const plan::Plan &plan = test::llamaPlan(type);
    KernelSet set = generateKernels(plan);
    expectEveryStepPlanned(plan, set);
    for (const CudaKernel &kernel : set.kernels)
      if (kernel.op == "rms_norm") {
        EXPECT_NE(kernel.name.find(type == plan::DType::BF16 ? "_bf16_" : "_f16_"), std::string::npos);
        EXPECT_NE(kernel.source.find(std::string("const ") + cType + " *in0"), std::string::npos);
      }
  }
}

TEST(CudaCodeGen, OptimizerKernelsPerStorageType) {
  std::vector<CudaKernel> kernels = optimizerKernels(test::gptPlan());
  std::vector<std::string> ops;
  for (const CudaKernel &kernel : kernels)
    ops.push_back(kernel.op);
  EXPECT_EQ(ops, (std::vector<std::string>{"adamw", "sum_squares_partial", "scale", "sum_squares_finish"}));
  // Mixed precision keeps the parameters f32 (the master weights, docs/precision.md): AdamW is the f32 one.
  const plan::Plan &mixed = test::llamaPlan(plan::DType::BF16);
  kernels = optimizerKernels(mixed);
  ASSERT_FALSE(kernels.empty());
  EXPECT_NE(kernels.front().source.find("mt::adamw<float, float, float>"), std::string::npos);
  EXPECT_EQ(kernels.front().role, "f32_f32_f32");
}

TEST(CudaCodeGen, OptimizerWorkListsSplitTensorsIntoItems) {
  // 150000 bf16 elements: items of 65536, 65536 and 18928, each address 2 bytes per element further.
  alignas(8) static unsigned char memory[1];
  const auto base = reinterpret_cast<long long>(memory);
  std::vector<long long> items;
  appendSpanItems(items, memory, plan::DType::BF16, 150000);
  EXPECT_EQ(items, (std::vector<long long>{base, 65536, base + 131072, 65536, base + 262144, 18928}));
  EXPECT_EQ(optimizerItemWords("scale"), 2);

  // AdamW: each of the four tensors advances by its own storage type; the decay flag is every item's.
  items.clear();
  appendAdamwItems(items, {memory, memory, memory, memory, 65537, false, plan::DType::F32, plan::DType::F16,
                           plan::DType::F64});
  EXPECT_EQ(items, (std::vector<long long>{base, base, base, base, 65536, 0, base + 262144, base + 131072,
                                           base + 524288, base + 524288, 1, 0}));
  EXPECT_EQ(optimizerItemWords("adamw"), 6);
}

TEST(CudaCodeGen, MixedPrecisionCastsAndTheScaledLossSeed) {
  const plan::Plan &plan = test::llamaPlan(plan::DType::F16);
  KernelSet set = generateKernels(plan);
  expectEveryStepPlanned(plan, set);
  bool narrowing = false, widening = false, seed = false;
  for (const CudaKernel &kernel : set.kernels) {
    if (kernel.op == "cast") {
      narrowing = narrowing || kernel.source.find("mt::convert<float, __half,") != std::string::npos;
      widening = widening || kernel.source.find("mt::convert<__half, float,") != std::string::npos;
    }
    for (const KernelArg &arg : kernel.args)
      seed = seed || (kernel.op == "fill" && arg.source == ArgSource::Runtime && arg.name == "loss_scale");
  }
  EXPECT_TRUE(narrowing) << "the parameters' f16 copies";
  EXPECT_FALSE(widening) << "the weight gradients are written to their f32 buffers directly (--mt-plan)";
  EXPECT_TRUE(seed) << "the loss seed takes the loss scale at run time";
}

TEST(CudaCodeGen, AStepWithoutItsAttributeIsMissingWithTheReason) {
  plan::Plan plan = test::gptPlan();
  plan::Program &program = plan.programs.front();
  for (plan::Step &step : program.steps)
    if (step.op == "layer_norm")
      step.attrs.erase("epsilon");
  KernelSet set = generateKernels(plan);
  for (const StepPlan &step : set.steps)
    if (step.op == "layer_norm" && step.ref.program == program.name) {
      EXPECT_EQ(step.backend, StepBackend::Missing);
      EXPECT_EQ(step.reason, "the step lacks its 'epsilon' attribute");
    }
}

} // namespace

// T5's encoder and decoder embeddings differ only in their token counts, which the kernel takes from its grid
// (one block per token): their sources used to agree, so both steps shared one kernel and the encoder's launch,
// and the decoder's step wrote past its output (found by the host simulator). The launch is part of a kernel's
// identity now.
TEST(CudaCodeGen, StepsWithOtherGridsGetTheirOwnKernel) {
  const plan::Plan &plan = test::t5Plan();
  KernelSet set = generateKernels(plan);
  std::map<std::string, std::vector<int64_t>> gridsByName;
  for (const StepPlan &step : set.steps)
    for (int k : step.kernels)
      gridsByName[set.kernels[size_t(k)].name].push_back(set.kernels[size_t(k)].launch.grid[0]);
  std::set<int64_t> embeddingGrids;
  for (const CudaKernel &kernel : set.kernels)
    if (kernel.op == "embedding")
      embeddingGrids.insert(kernel.launch.grid[0]);
  EXPECT_GE(embeddingGrids.size(), 2u) << "the encoder's and the decoder's embeddings launch different grids";
  for (const CudaKernel &kernel : set.kernels)
    for (const StepRef &ref : kernel.steps) {
      const plan::Step &step = plan.program(ref.program)->steps[size_t(ref.step)];
      if (step.op == "embedding") {
        EXPECT_EQ(kernel.launch.grid[0], plan.buffers[size_t(step.inputs[0])].numElements())
            << kernel.name << " serves " << ref.program << " step " << ref.step;
      }
    }
}
