//===- EngineComparison.cpp - Whole programs on the device engine against the CPU engine ---===//

#include "EngineComparison.h"

#include "CountingBackend.h"
#include "EngineValues.h"
#include "RandomFill.h"
#include "TestPlans.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/DeviceOptimizer.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

namespace megatron::test {

namespace {

/// A plan on both engines, the device engine over `backend` counted.
struct BothEngines {
  BothEngines(const plan::Plan &plan, device::DeviceBackend &backend)
      : kernels(codegen::generateKernels(plan)), counted(backend) {
    cpu = runtime::Engine::create(plan, error);
    if (cpu)
      gpu = device::DeviceEngine::create(plan, kernels, counted, error);
  }
  std::string error;
  codegen::KernelSet kernels;
  CountingBackend counted;
  std::unique_ptr<runtime::Engine> cpu;
  std::unique_ptr<device::DeviceEngine> gpu;
};

/// The parameters (and, zeroed on both, AdamW's moments) from the CPU engine to the device engine.
void uploadParametersAndZeroMoments(BothEngines &both);

/// The device optimizer over both engines' device side, after random parameters (from `seed`) are uploaded and the
/// moments zeroed on both sides: how every multi-iteration comparison starts.
void startOptimizing(BothEngines &both, uint64_t seed, std::unique_ptr<device::DeviceOptimizer> &optimizer) {
  ASSERT_NE(both.gpu, nullptr) << both.error;
  std::string error;
  optimizer = device::DeviceOptimizer::create(*both.gpu, both.counted, error);
  ASSERT_NE(optimizer, nullptr) << error;
  fillRandomly(*both.cpu, seed);
  ASSERT_NO_FATAL_FAILURE(uploadParametersAndZeroMoments(both)); // the moments start at zero on both
}

void uploadParametersAndZeroMoments(BothEngines &both) {
  for (const plan::Param &p : both.cpu->plan().params)
    for (int id : {p.buffer, p.expAvg, p.expAvgSq}) {
      if (id != p.buffer)
        std::fill_n(both.cpu->as<float>(id), both.cpu->buffer(id).numElements(), 0.0f);
      ASSERT_EQ(upload(*both.cpu, *both.gpu, id), "");
    }
}

void uploadInputs(BothEngines &both) {
  for (const plan::Input &input : both.cpu->plan().inputs)
    ASSERT_EQ(upload(*both.cpu, *both.gpu, input.buffer), "");
}

/// The CPU engine's gradients as cpu::scaleTensors and sumOfSquares take them.
struct CpuGradients {
  explicit CpuGradients(runtime::Engine &cpu) {
    for (const plan::Param &p : cpu.plan().params) {
      data.push_back(cpu.as<float>(p.grad));
      sizes.push_back(cpu.buffer(p.grad).numElements());
    }
  }
  double sumOfSquares() const {
    double squares = 0;
    for (size_t i = 0; i < data.size(); ++i)
      squares += cpu::sumOfSquares<float>(sizes[i], data[i]);
    return squares;
  }
  void scale(double factor) { cpu::scaleTensors<float>(int(data.size()), data.data(), sizes.data(), float(factor)); }

  std::vector<float *> data;
  std::vector<cpu::Index> sizes;
};

/// AdamW on every parameter of the CPU engine, as the device optimizer runs it.
void cpuAdamw(runtime::Engine &cpu, const device::AdamWSettings &adam) {
  for (const plan::Param &p : cpu.plan().params)
    cpu::adamwStep<float>(cpu.buffer(p.buffer).numElements(),
                          cpu::AdamWConfig{adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weightDecay, adam.step},
                          p.weightDecay, cpu.as<float>(p.buffer), cpu.as<float>(p.grad), cpu.as<float>(p.expAvg),
                          cpu.as<float>(p.expAvgSq));
}

void report(const EngineComparisonModel &model, const std::string &device, const ProgramComparison &c) {
  std::printf("%s on the device engine over %s: %d kernel launches, %d GEMMs, at most %d host copies per run\n",
              model.name, device.c_str(), c.launches, c.gemms, c.hostCopiesPerRun);
  for (size_t i = 0; i < c.cpuLosses.size(); ++i)
    std::printf("  loss %zu: CPU %.9g, device %.9g (relative difference %.3g)\n", i, c.cpuLosses[i],
                c.deviceLosses[i], std::fabs(c.deviceLosses[i] - c.cpuLosses[i]) / std::fabs(c.cpuLosses[i]));
  std::printf("  %d parameter gradients: worst %.3g of the tensor's scale (%s)\n", c.gradients, c.worstGradient,
              c.worstParameter.c_str());
  std::fflush(stdout);
}

} // namespace

const std::vector<EngineComparisonModel> &engineComparisonModels() {
  static const std::vector<EngineComparisonModel> models = {
      {"gpt f32", "GptF32", "gpt", 1.0, plan::DType::F32},
      // Padding masks, token types, the generated pooler and the sentence-order head.
      {"bert f32", "BertF32", "bert", 1.0, plan::DType::F32},
      {"llama f32", "LlamaF32", "llama", 1.0, plan::DType::F32},
      {"llama bf16", "LlamaBf16", "llama-bf16", 1.0, plan::DType::BF16},
      // --mt-fuse-elementwise: the residual dropout_add kernels and the MLP's GeLU in cuBLASLt's epilogues
      // (linear_gelu: GELU_AUX_BIAS, linear_grad_input_gelu: DGELU), which the step checker does not cover.
      {"gpt bf16 (fused)", "GptBf16Fused", "gpt-bf16", 1.0, plan::DType::BF16, /*fusedGelu=*/true},
      // The loss scale reaches the loss seed's kernel as a run-time value; the gradients are compared scaled.
      {"llama f16", "LlamaF16WithALossScale", "llama-f16", 1024.0, plan::DType::F16},
  };
  return models;
}

EngineTolerances fusedGeluTolerances(const EngineComparisonModel &model, EngineTolerances tolerances) {
  const bool sixteenBit = model.compute == plan::DType::BF16 || model.compute == plan::DType::F16;
  if (model.fusedGelu && sixteenBit)
    tolerances.gradient *= 2;
  return tolerances;
}

std::string compareTrainStep(const plan::Plan &plan, double lossScale, device::DeviceBackend &backend,
                             ProgramComparison &result) {
  BothEngines both(plan, backend);
  if (!both.gpu)
    return both.error;
  runtime::Engine &cpu = *both.cpu;
  device::DeviceEngine &gpu = *both.gpu;
  std::string error;

  fillRandomly(cpu, 42);
  for (const plan::Param &p : plan.params)
    if (error = upload(cpu, gpu, p.buffer); !error.empty())
      return error;
  cpu.zero(plan::Arena::Grads);
  if (error = gpu.zero(plan::Arena::Grads); !error.empty())
    return error;

  auto runBoth = [&](const std::string &program, const runtime::RunContext &context) -> std::string {
    for (const plan::Input &input : plan.inputs) // the data loader's copy, before the program
      if (std::string failure = upload(cpu, gpu, input.buffer); !failure.empty())
        return failure;
    if (std::string failure = cpu.run(program, context); !failure.empty())
      return "CPU engine: " + failure;
    const int copies = both.counted.hostCopies;
    if (std::string failure = gpu.run(program, context); !failure.empty())
      return "device engine: " + failure;
    result.hostCopiesPerRun = std::max(result.hostCopiesPerRun, both.counted.hostCopies - copies);
    double loss = 0;
    if (std::string failure = gpu.loss(program, loss); !failure.empty())
      return failure;
    result.cpuLosses.push_back(cpu.loss(program));
    result.deviceLosses.push_back(loss);
    return {};
  };
  for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
    fillInputs(cpu, 100 + uint64_t(microBatch));
    runtime::RunContext context;
    context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, microBatch);
    context.lossScale = lossScale;
    if (error = runBoth("train_step", context); !error.empty())
      return error;
  }
  for (const plan::Param &p : plan.params) {
    const double difference = relativeDifference(deviceValues(gpu, p.grad, error), cpuValues(cpu, p.grad));
    if (!error.empty())
      return error;
    ++result.gradients;
    if (!(difference <= result.worstGradient)) {
      result.worstGradient = difference;
      result.worstParameter = p.name;
    }
  }
  runtime::RunContext evaluation;
  evaluation.training = false;
  if (error = runBoth("forward", evaluation); !error.empty())
    return error;
  result.launches = both.counted.launches;
  result.gemms = both.counted.gemms;
  return {};
}

void expectTrainStepMatches(const EngineComparisonModel &model, device::DeviceBackend &backend,
                            const EngineTolerances &tolerances) {
  std::string error;
  const plan::Plan *found = testPlan(model.plan, error);
  ASSERT_NE(found, nullptr) << error;
  const plan::Plan &plan = *found;
  ProgramComparison c;
  ASSERT_EQ(compareTrainStep(plan, model.lossScale, backend, c), "");
  report(model, backend.describe(), c);
  ASSERT_EQ(c.cpuLosses.size(), 3u);
  for (size_t i = 0; i < c.cpuLosses.size(); ++i)
    EXPECT_NEAR(c.deviceLosses[i], c.cpuLosses[i], tolerances.loss * std::fabs(c.cpuLosses[i])) << "run " << i;
  EXPECT_EQ(c.gradients, int(plan.params.size()));
  EXPECT_LE(c.worstGradient, tolerances.gradient) << c.worstParameter;
  EXPECT_GT(c.gemms, 0);
  // Nothing comes from the host inside a run: at most the index-status words go back, once.
  EXPECT_LE(c.hostCopiesPerRun, 1);
}

void expectTrainingIterationsMatch(device::DeviceBackend &backend, int iterations,
                                   const TrainingTolerances &tolerances) {
  std::string error;
  const plan::Plan *found = testPlan("gpt", error);
  ASSERT_NE(found, nullptr) << error;
  const plan::Plan &plan = *found;
  BothEngines both(plan, backend);
  std::unique_ptr<device::DeviceOptimizer> optimizer;
  ASSERT_NO_FATAL_FAILURE(startOptimizing(both, 42, optimizer));
  runtime::Engine &cpu = *both.cpu;
  device::DeviceEngine &gpu = *both.gpu;
  CpuGradients grads(cpu);

  double worstLoss = 0, worstNorm = 0;
  for (int64_t iteration = 1; iteration <= iterations; ++iteration) {
    cpu.zero(plan::Arena::Grads);
    ASSERT_EQ(gpu.zero(plan::Arena::Grads), "");
    double cpuLoss = 0, gpuLoss = 0;
    for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
      fillInputs(cpu, uint64_t(1000 * iteration + microBatch));
      ASSERT_NO_FATAL_FAILURE(uploadInputs(both));
      runtime::RunContext context;
      context.dropoutSeed = runtime::dropoutSeedFor(1234, uint64_t(iteration), uint64_t(microBatch));
      ASSERT_EQ(cpu.run("train_step", context), "");
      ASSERT_EQ(gpu.run("train_step", context), "");
      double loss = 0;
      ASSERT_EQ(gpu.loss("train_step", loss), "");
      cpuLoss += cpu.loss("train_step");
      gpuLoss += loss;
    }
    worstLoss = std::max(worstLoss, std::fabs(gpuLoss - cpuLoss) / std::fabs(cpuLoss));

    const device::AdamWSettings adam{5e-3, 0.9, 0.999, 1e-8, 0.01, iteration};
    const double cpuNorm = std::sqrt(grads.sumOfSquares());
    if (1.0 / (cpuNorm + 1e-6) < 1.0)
      grads.scale(1.0 / (cpuNorm + 1e-6));
    cpuAdamw(cpu, adam);
    double gpuNorm = 0;
    const int launchesBefore = both.counted.launches;
    ASSERT_EQ(optimizer->step(adam, 1.0, gpuNorm), "");
    // One launch per kernel for all the parameters (the work lists): the norm's partial sums and their total,
    // the clipping scale when the norm exceeds the clip, and AdamW.
    EXPECT_EQ(both.counted.launches - launchesBefore, 3 + (1.0 / (cpuNorm + 1e-6) < 1.0 ? 1 : 0))
        << plan.params.size() << " parameters";
    worstNorm = std::max(worstNorm, std::fabs(gpuNorm - cpuNorm) / cpuNorm);
    std::printf("  iteration %lld: loss CPU %.9g, device %.9g; gradient norm CPU %.9g, device %.9g\n",
                static_cast<long long>(iteration), cpuLoss / 2, gpuLoss / 2, cpuNorm, gpuNorm);
  }
  double differenceSum = 0, valueSum = 0, worstElement = 0;
  for (const plan::Param &p : plan.params) {
    const std::vector<double> device = deviceValues(gpu, p.buffer, error), host = cpuValues(cpu, p.buffer);
    ASSERT_EQ(error, "");
    for (size_t i = 0; i < host.size(); ++i) {
      differenceSum += std::fabs(device[i] - host[i]);
      valueSum += std::fabs(host[i]);
      worstElement = std::max(worstElement, std::fabs(device[i] - host[i]));
    }
  }
  const double meanParameter = differenceSum / valueSum;
  std::printf("  after %d iterations on %s: worst loss %.3g, norm %.3g (relative); parameters: mean |difference| "
              "%.3g of the mean |value|, worst element %.3g (lr %.3g)\n",
              iterations, backend.describe().c_str(), worstLoss, worstNorm, meanParameter, worstElement, 5e-3);
  std::fflush(stdout);
  EXPECT_LE(worstLoss, tolerances.loss);
  EXPECT_LE(worstNorm, tolerances.norm);
  EXPECT_LE(meanParameter, tolerances.meanParameter);
}

void expectFp16OverflowSkipsTheStep(device::DeviceBackend &backend, double lossTolerance) {
  std::string error;
  const plan::Plan *found = testPlan("llama-f16", error);
  ASSERT_NE(found, nullptr) << error;
  const plan::Plan &plan = *found;
  BothEngines both(plan, backend);
  std::unique_ptr<device::DeviceOptimizer> optimizer;
  ASSERT_NO_FATAL_FAILURE(startOptimizing(both, 5, optimizer));
  runtime::Engine &cpu = *both.cpu;
  device::DeviceEngine &gpu = *both.gpu;
  CpuGradients grads(cpu);
  auto iteration = [&](double scale, int64_t step, bool &cpuSkipped, bool &gpuSkipped, double &cpuLoss,
                       double &gpuLoss) {
    cpu.zero(plan::Arena::Grads);
    ASSERT_EQ(gpu.zero(plan::Arena::Grads), "");
    fillInputs(cpu, uint64_t(50 + step));
    ASSERT_NO_FATAL_FAILURE(uploadInputs(both));
    runtime::RunContext context;
    context.lossScale = scale;
    ASSERT_EQ(cpu.run("train_step", context), "");
    ASSERT_EQ(gpu.run("train_step", context), "");
    cpuLoss = cpu.loss("train_step");
    ASSERT_EQ(gpu.loss("train_step", gpuLoss), "");
    // The CPU trainer's rule: unscale, then any inf or NaN skips the step.
    grads.scale(1.0 / scale);
    cpuSkipped = !std::isfinite(grads.sumOfSquares());
    const device::AdamWSettings adam{1e-3, 0.9, 0.999, 1e-8, 0.01, step};
    if (!cpuSkipped)
      cpuAdamw(cpu, adam);
    double norm = 0;
    ASSERT_EQ(optimizer->step(adam, 0.0, norm, scale, &gpuSkipped), "");
  };
  const std::vector<double> before = deviceValues(gpu, plan.params.front().buffer, error);
  ASSERT_EQ(error, "");
  bool cpuSkipped = false, gpuSkipped = false;
  double cpuLoss = 0, gpuLoss = 0;
  ASSERT_NO_FATAL_FAILURE(iteration(0x1p32, 1, cpuSkipped, gpuSkipped, cpuLoss, gpuLoss));
  EXPECT_TRUE(cpuSkipped) << "2^32 overflows f16 on the CPU";
  EXPECT_TRUE(gpuSkipped) << "and on the device";
  EXPECT_EQ(deviceValues(gpu, plan.params.front().buffer, error), before) << "a skipped step changes nothing";
  ASSERT_NO_FATAL_FAILURE(iteration(1024.0, 1, cpuSkipped, gpuSkipped, cpuLoss, gpuLoss));
  EXPECT_FALSE(cpuSkipped);
  EXPECT_FALSE(gpuSkipped);
  ASSERT_NO_FATAL_FAILURE(iteration(1024.0, 2, cpuSkipped, gpuSkipped, cpuLoss, gpuLoss));
  std::printf("  after the skipped step and one update on %s: loss CPU %.9g, device %.9g (relative difference "
              "%.3g)\n",
              backend.describe().c_str(), cpuLoss, gpuLoss, std::fabs(gpuLoss - cpuLoss) / std::fabs(cpuLoss));
  std::fflush(stdout);
  EXPECT_NEAR(gpuLoss, cpuLoss, lossTolerance * std::fabs(cpuLoss));
}

void expectBadTokenIdReportedAtItsPosition(device::DeviceBackend &backend) {
  std::string found;
  const plan::Plan *gpt = testPlan("gpt", found);
  ASSERT_NE(gpt, nullptr) << found;
  const plan::Plan &plan = *gpt;
  BothEngines both(plan, backend);
  ASSERT_NE(both.gpu, nullptr) << both.error;
  runtime::Engine &cpu = *both.cpu;
  device::DeviceEngine &gpu = *both.gpu;
  fillRandomly(cpu, 7);
  for (const plan::Input &input : plan.inputs)
    if (input.name == "tokens") {
      cpu.as<int32_t>(input.buffer)[50] = -1;
      cpu.as<int32_t>(input.buffer)[37] = 1 << 20;
    }
  ASSERT_NO_FATAL_FAILURE(uploadInputs(both));
  // The first bad position, in the first step that checks, as the CPU engine's error names it.
  const std::string error = gpu.run("train_step", runtime::RunContext());
  EXPECT_NE(error.find("(embedding at 'embedding.word_embeddings'): an id or label at position 37"),
            std::string::npos)
      << error;
  EXPECT_NE(cpu.run("train_step", runtime::RunContext()).find("at position 37"), std::string::npos);
  // Good ids again: the status words are reset at every run.
  fillInputs(cpu, 8);
  ASSERT_NO_FATAL_FAILURE(uploadInputs(both));
  EXPECT_EQ(gpu.run("train_step", runtime::RunContext()), "");
}

} // namespace megatron::test
