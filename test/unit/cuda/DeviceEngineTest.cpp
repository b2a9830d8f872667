//===- DeviceEngineTest.cpp - Whole programs on the device engine against the CPU engine ---===//
//
// The device engine (runtime/device) over the host simulator: the plan's arenas in (simulated) device memory,
// every step launched in order (generated kernels, GEMMs), nothing copied from the host between steps. The CPU
// engine and the device engine start from the same parameters and inputs, run two micro-batches of train_step
// (the second accumulating into the gradients of the first) and the evaluation forward, and the losses and every
// parameter gradient are compared. Unlike the step checker (SimulatedStepsTest), no step here gets the CPU's
// inputs: differences carry through the whole forward and backward, as they will on a GPU.
//
//===----------------------------------------------------------------------===//

#include "RandomFill.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "sim/DeviceValues.h"
#include "sim/SimulatedBackend.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/DeviceOptimizer.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

using namespace megatron;

namespace {

/// Buffer `id` of the CPU engine as doubles (16-bit values are kept there as f32).
std::vector<double> cpuValues(runtime::Engine &cpu, int id) {
  const plan::Buffer &b = cpu.buffer(id);
  std::vector<double> values(size_t(b.numElements()));
  for (int64_t i = 0; i < b.numElements(); ++i)
    values[size_t(i)] = cudasim::readDevice(runtime::Engine::storageType(b.dtype),
                                            static_cast<const std::byte *>(cpu.data(id)), i);
  return values;
}

std::string upload(runtime::Engine &cpu, device::DeviceEngine &device, int id) {
  const plan::Buffer &b = cpu.buffer(id);
  std::vector<std::byte> staging(device.bytes(id));
  const std::vector<double> values = cpuValues(cpu, id);
  for (int64_t i = 0; i < b.numElements(); ++i)
    cudasim::writeDevice(b.dtype, staging.data(), i, values[size_t(i)]);
  return device.upload(id, staging.data());
}

std::vector<double> deviceValues(device::DeviceEngine &device, int id, std::string &error) {
  const plan::Buffer &b = device.plan().buffers[size_t(id)];
  std::vector<std::byte> staging(device.bytes(id));
  error = device.download(id, staging.data());
  std::vector<double> values(size_t(b.numElements()));
  for (int64_t i = 0; i < b.numElements(); ++i)
    values[size_t(i)] = cudasim::readDevice(b.dtype, staging.data(), i);
  return values;
}

/// |device − cpu| at its worst, relative to the CPU tensor's scale (its largest |value|).
double relativeDifference(const std::vector<double> &device, const std::vector<double> &cpu) {
  double scale = 0, worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    scale = std::max(scale, std::fabs(cpu[i]));
    worst = std::max(worst, std::isfinite(device[i]) ? std::fabs(device[i] - cpu[i]) : INFINITY);
  }
  return worst / std::max(scale, 1e-30);
}

struct Comparison {
  std::vector<double> cpuLosses, deviceLosses;
  double worstGradient = 0;   // over every parameter gradient, relative to its scale
  std::string worstParameter;
  int gradients = 0;
  int launches = 0, gemms = 0;
  int hostCopiesPerRun = 0;   // the most host copies the device engine made inside one program run
};

/// Both engines from the same random parameters and inputs: two micro-batches of train_step with different
/// inputs and dropout seeds, then the evaluation forward; the losses of each run and every gradient afterwards.
std::string compare(const plan::Plan &plan, double lossScale, Comparison &result) {
  test::SimulatedKernels &kernels = test::simulatedKernels();
  if (!kernels.error.empty())
    return kernels.error;
  std::string error;
  std::unique_ptr<runtime::Engine> cpu = runtime::Engine::create(plan, error);
  if (!cpu)
    return error;
  const codegen::KernelSet set = codegen::generateKernels(plan);
  cudasim::SimulatedBackend backend(kernels.library, int(std::max(1u, std::thread::hardware_concurrency())));
  std::unique_ptr<device::DeviceEngine> gpu = device::DeviceEngine::create(plan, set, backend, error);
  if (!gpu)
    return error;

  test::fillRandomly(*cpu, 42);
  for (const plan::Param &p : plan.params)
    if (error = upload(*cpu, *gpu, p.buffer); !error.empty())
      return error;
  cpu->zero(plan::Arena::Grads);
  if (error = gpu->zero(plan::Arena::Grads); !error.empty())
    return error;

  auto runBoth = [&](const std::string &program, const runtime::RunContext &context) -> std::string {
    for (const plan::Input &input : plan.inputs) // the data loader's copy, before the program
      if (std::string failure = upload(*cpu, *gpu, input.buffer); !failure.empty())
        return failure;
    if (std::string failure = cpu->run(program, context); !failure.empty())
      return "CPU engine: " + failure;
    const int copies = backend.hostCopies;
    if (std::string failure = gpu->run(program, context); !failure.empty())
      return "device engine: " + failure;
    result.hostCopiesPerRun = std::max(result.hostCopiesPerRun, backend.hostCopies - copies);
    double loss = 0;
    if (std::string failure = gpu->loss(program, loss); !failure.empty())
      return failure;
    result.cpuLosses.push_back(cpu->loss(program));
    result.deviceLosses.push_back(loss);
    return {};
  };
  for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
    test::fillInputs(*cpu, 100 + uint64_t(microBatch));
    runtime::RunContext context;
    context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, microBatch);
    context.lossScale = lossScale;
    if (error = runBoth("train_step", context); !error.empty())
      return error;
  }
  for (const plan::Param &p : plan.params) {
    const double difference = relativeDifference(deviceValues(*gpu, p.grad, error), cpuValues(*cpu, p.grad));
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
  result.launches = backend.launches;
  result.gemms = backend.gemms;
  return {};
}

void report(const char *model, const Comparison &c) {
  std::printf("%s on the device engine (simulated): %d kernel launches, %d GEMMs, at most %d host copies per run\n",
              model, c.launches, c.gemms, c.hostCopiesPerRun);
  for (size_t i = 0; i < c.cpuLosses.size(); ++i)
    std::printf("  loss %zu: CPU %.9g, device %.9g (relative difference %.3g)\n", i, c.cpuLosses[i],
                c.deviceLosses[i], std::fabs(c.deviceLosses[i] - c.cpuLosses[i]) / std::fabs(c.cpuLosses[i]));
  std::printf("  %d parameter gradients: worst %.3g of the tensor's scale (%s)\n", c.gradients, c.worstGradient,
              c.worstParameter.c_str());
}

void expectMatch(const char *model, const plan::Plan &plan, double lossScale, double lossTolerance,
                 double gradientTolerance) {
  Comparison c;
  ASSERT_EQ(compare(plan, lossScale, c), "");
  report(model, c);
  ASSERT_EQ(c.cpuLosses.size(), 3u);
  for (size_t i = 0; i < c.cpuLosses.size(); ++i)
    EXPECT_NEAR(c.deviceLosses[i], c.cpuLosses[i], lossTolerance * std::fabs(c.cpuLosses[i])) << "run " << i;
  EXPECT_EQ(c.gradients, int(plan.params.size()));
  EXPECT_LE(c.worstGradient, gradientTolerance) << c.worstParameter;
  EXPECT_GT(c.gemms, 0);
  // Nothing comes from the host inside a run: at most the index-status words go back, once.
  EXPECT_LE(c.hostCopiesPerRun, 1);
}

TEST(CudaDeviceEngine, GptTrainStepMatchesTheCpuEngine) {
  // f32 throughout: the backends differ only in summation order and libm, ~1e-7 per op.
  expectMatch("gpt f32", test::gptPlan(), 1.0, 1e-5, 1e-5);
}

TEST(CudaDeviceEngine, BertTrainStepMatchesTheCpuEngine) {
  // Padding masks, token types, the generated pooler and the sentence-order head.
  expectMatch("bert f32", test::bertPlan(), 1.0, 1e-5, 1e-5);
}

TEST(CudaDeviceEngine, LlamaTrainStepMatchesTheCpuEngine) {
  expectMatch("llama f32", test::llamaPlan(), 1.0, 1e-5, 1e-5);
}

// 16-bit activations: both backends compute each value in f32 and round it once, but from sums in another order,
// so now and then a value rounds to the neighbouring 16-bit number: one unit in the last place (bf16 2^-8, f16
// 2^-11 relative), which then flows on through the rest of the program. The gradients (f32 master gradients
// accumulated from 16-bit operands) are allowed two such units of the tensor's scale; the loss, a mean over
// tokens in f32, 1e-5. Measured: bf16 2.0e-7 (loss bitwise), f16 5.4e-4 (loss 2.9e-7).
TEST(CudaDeviceEngine, LlamaBf16TrainStepMatchesTheCpuEngine) {
  expectMatch("llama bf16", test::llamaPlan(plan::DType::BF16), 1.0, 1e-5, 0x1p-7);
}

TEST(CudaDeviceEngine, LlamaF16WithALossScaleMatchesTheCpuEngine) {
  // The loss scale reaches the loss seed's kernel as a run-time value; the gradients are compared scaled.
  expectMatch("llama f16", test::llamaPlan(plan::DType::F16), 1024.0, 1e-5, 0x1p-10);
}

/// A plan on both engines: the CPU engine and the device engine over a simulated backend of `threads` threads.
struct BothEngines {
  explicit BothEngines(const plan::Plan &plan, int threads)
      : set(codegen::generateKernels(plan)), backend(test::simulatedKernels().library, threads) {
    cpu = runtime::Engine::create(plan, error);
    if (cpu)
      gpu = device::DeviceEngine::create(plan, set, backend, error);
  }
  std::string error;
  codegen::KernelSet set;
  cudasim::SimulatedBackend backend;
  std::unique_ptr<runtime::Engine> cpu;
  std::unique_ptr<device::DeviceEngine> gpu;
};

// Whole training iterations, as megatron-run's trainer runs them (runtime/train, Run::trainIteration): the
// gradients zeroed, two micro-batches of train_step, the global norm, clipping to 1.0 and AdamW, four times; the
// device engine and its optimizer kernels against the CPU engine and cpu::sumOfSquares / scaleTensors /
// adamwStep. Nothing but the data loader's inputs crosses to the device between iterations, so the parameters
// the device trains are its own. The gradient norms stay above 1, so clipping takes part.
TEST(CudaDeviceEngine, FourTrainingIterationsMatchTheCpuTrainer) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  const plan::Plan &plan = test::gptPlan();
  BothEngines both(plan, int(std::max(1u, std::thread::hardware_concurrency())));
  ASSERT_NE(both.gpu, nullptr) << both.error;
  runtime::Engine *cpu = both.cpu.get();
  device::DeviceEngine *gpu = both.gpu.get();
  cudasim::SimulatedBackend &backend = both.backend;
  std::string error;
  std::unique_ptr<device::DeviceOptimizer> optimizer = device::DeviceOptimizer::create(*gpu, backend, error);
  ASSERT_NE(optimizer, nullptr) << error;

  test::fillRandomly(*cpu, 42);
  for (const plan::Param &p : plan.params) // the moments start at zero on both (fresh arenas are zeroed / filled)
    for (int id : {p.buffer, p.expAvg, p.expAvgSq}) {
      if (id != p.buffer)
        std::fill_n(cpu->as<float>(id), cpu->buffer(id).numElements(), 0.0f);
      ASSERT_EQ(upload(*cpu, *gpu, id), "");
    }
  std::vector<float *> grads;
  std::vector<cpu::Index> sizes;
  for (const plan::Param &p : plan.params) {
    grads.push_back(cpu->as<float>(p.grad));
    sizes.push_back(cpu->buffer(p.grad).numElements());
  }

  double worstLoss = 0, worstNorm = 0;
  for (int64_t iteration = 1; iteration <= 4; ++iteration) {
    cpu->zero(plan::Arena::Grads);
    ASSERT_EQ(gpu->zero(plan::Arena::Grads), "");
    double cpuLoss = 0, gpuLoss = 0;
    for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
      test::fillInputs(*cpu, uint64_t(1000 * iteration + microBatch));
      for (const plan::Input &input : plan.inputs)
        ASSERT_EQ(upload(*cpu, *gpu, input.buffer), "");
      runtime::RunContext context;
      context.dropoutSeed = runtime::dropoutSeedFor(1234, uint64_t(iteration), uint64_t(microBatch));
      ASSERT_EQ(cpu->run("train_step", context), "");
      ASSERT_EQ(gpu->run("train_step", context), "");
      double loss = 0;
      ASSERT_EQ(gpu->loss("train_step", loss), "");
      cpuLoss += cpu->loss("train_step");
      gpuLoss += loss;
    }
    worstLoss = std::max(worstLoss, std::fabs(gpuLoss - cpuLoss) / std::fabs(cpuLoss));

    const device::AdamWSettings adam{5e-3, 0.9, 0.999, 1e-8, 0.01, iteration};
    double cpuSquares = 0;
    for (size_t i = 0; i < grads.size(); ++i)
      cpuSquares += cpu::sumOfSquares<float>(sizes[i], grads[i]);
    const double cpuNorm = std::sqrt(cpuSquares);
    if (1.0 / (cpuNorm + 1e-6) < 1.0)
      cpu::scaleTensors<float>(int(grads.size()), grads.data(), sizes.data(), float(1.0 / (cpuNorm + 1e-6)));
    for (const plan::Param &p : plan.params)
      cpu::adamwStep<float>(cpu->buffer(p.buffer).numElements(),
                            cpu::AdamWConfig{adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weightDecay, iteration},
                            p.weightDecay, cpu->as<float>(p.buffer), cpu->as<float>(p.grad), cpu->as<float>(p.expAvg),
                            cpu->as<float>(p.expAvgSq));
    double gpuNorm = 0;
    ASSERT_EQ(optimizer->step(adam, 1.0, gpuNorm), "");
    worstNorm = std::max(worstNorm, std::fabs(gpuNorm - cpuNorm) / cpuNorm);
    std::printf("  iteration %lld: loss CPU %.9g, device %.9g; gradient norm CPU %.9g, device %.9g\n",
                static_cast<long long>(iteration), cpuLoss / 2, gpuLoss / 2, cpuNorm, gpuNorm);
  }
  // AdamW divides by sqrt(v): for an element whose gradient is ~0, summation-order noise can flip the sign of m
  // and move it by up to 2·lr per step, however small the noise. So the parameters are compared on average (the
  // mean |difference| over the mean |value|), which a real error would move, and the worst element is printed.
  double differenceSum = 0, valueSum = 0, worstElement = 0;
  for (const plan::Param &p : plan.params) {
    const std::vector<double> device = deviceValues(*gpu, p.buffer, error), host = cpuValues(*cpu, p.buffer);
    ASSERT_EQ(error, "");
    for (size_t i = 0; i < host.size(); ++i) {
      differenceSum += std::fabs(device[i] - host[i]);
      valueSum += std::fabs(host[i]);
      worstElement = std::max(worstElement, std::fabs(device[i] - host[i]));
    }
  }
  const double meanParameter = differenceSum / valueSum;
  std::printf("  after 4 iterations: worst loss %.3g, norm %.3g (relative); parameters: mean |difference| %.3g of "
              "the mean |value|, worst element %.3g (lr %.3g)\n",
              worstLoss, worstNorm, meanParameter, worstElement, 5e-3);
  // f32 on both sides; the backends differ in summation order (~1e-7 per op), which four updates carry on.
  EXPECT_LE(worstLoss, 1e-5);
  EXPECT_LE(worstNorm, 1e-4);
  EXPECT_LE(meanParameter, 1e-4);
}

// fp16's loss scaling on the device (runtime/train/LossScaler, Megatron's grad scaler): the gradients divided by
// the scale, an overflow skips the step. A scale of 2^32 overflows the f16 activation gradients of the LLaMA-style
// model, as it does on the CPU: both skip, and nothing changes on the device; at 1024 both step, and the next
// iteration's losses agree.
TEST(CudaDeviceEngine, Fp16OverflowSkipsTheStepAsOnTheCpu) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  const plan::Plan &plan = test::llamaPlan(plan::DType::F16);
  BothEngines both(plan, int(std::max(1u, std::thread::hardware_concurrency())));
  ASSERT_NE(both.gpu, nullptr) << both.error;
  std::string error;
  std::unique_ptr<device::DeviceOptimizer> optimizer = device::DeviceOptimizer::create(*both.gpu, both.backend, error);
  ASSERT_NE(optimizer, nullptr) << error;
  test::fillRandomly(*both.cpu, 5);
  for (const plan::Param &p : plan.params)
    for (int id : {p.buffer, p.expAvg, p.expAvgSq}) {
      if (id != p.buffer)
        std::fill_n(both.cpu->as<float>(id), both.cpu->buffer(id).numElements(), 0.0f);
      ASSERT_EQ(upload(*both.cpu, *both.gpu, id), "");
    }
  std::vector<float *> grads;
  std::vector<cpu::Index> sizes;
  for (const plan::Param &p : plan.params) {
    grads.push_back(both.cpu->as<float>(p.grad));
    sizes.push_back(both.cpu->buffer(p.grad).numElements());
  }
  auto iteration = [&](double scale, int64_t step, bool &cpuSkipped, bool &gpuSkipped, double &cpuLoss,
                       double &gpuLoss) {
    both.cpu->zero(plan::Arena::Grads);
    ASSERT_EQ(both.gpu->zero(plan::Arena::Grads), "");
    test::fillInputs(*both.cpu, uint64_t(50 + step));
    for (const plan::Input &input : plan.inputs)
      ASSERT_EQ(upload(*both.cpu, *both.gpu, input.buffer), "");
    runtime::RunContext context;
    context.lossScale = scale;
    ASSERT_EQ(both.cpu->run("train_step", context), "");
    ASSERT_EQ(both.gpu->run("train_step", context), "");
    cpuLoss = both.cpu->loss("train_step");
    ASSERT_EQ(both.gpu->loss("train_step", gpuLoss), "");
    // The CPU trainer's rule: unscale, then any inf or NaN skips the step.
    cpu::scaleTensors<float>(int(grads.size()), grads.data(), sizes.data(), float(1.0 / scale));
    double squares = 0;
    for (size_t i = 0; i < grads.size(); ++i)
      squares += cpu::sumOfSquares<float>(sizes[i], grads[i]);
    cpuSkipped = !std::isfinite(squares);
    const device::AdamWSettings adam{1e-3, 0.9, 0.999, 1e-8, 0.01, step};
    if (!cpuSkipped)
      for (const plan::Param &p : plan.params)
        cpu::adamwStep<float>(both.cpu->buffer(p.buffer).numElements(),
                              cpu::AdamWConfig{adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weightDecay, step},
                              p.weightDecay, both.cpu->as<float>(p.buffer), both.cpu->as<float>(p.grad),
                              both.cpu->as<float>(p.expAvg), both.cpu->as<float>(p.expAvgSq));
    double norm = 0;
    ASSERT_EQ(optimizer->step(adam, 0.0, norm, scale, &gpuSkipped), "");
  };
  std::vector<double> before = deviceValues(*both.gpu, plan.params.front().buffer, error);
  bool cpuSkipped = false, gpuSkipped = false;
  double cpuLoss = 0, gpuLoss = 0;
  iteration(0x1p32, 1, cpuSkipped, gpuSkipped, cpuLoss, gpuLoss);
  EXPECT_TRUE(cpuSkipped) << "2^32 overflows f16 on the CPU";
  EXPECT_TRUE(gpuSkipped) << "and on the device";
  EXPECT_EQ(deviceValues(*both.gpu, plan.params.front().buffer, error), before) << "a skipped step changes nothing";
  iteration(1024.0, 1, cpuSkipped, gpuSkipped, cpuLoss, gpuLoss);
  EXPECT_FALSE(cpuSkipped);
  EXPECT_FALSE(gpuSkipped);
  iteration(1024.0, 2, cpuSkipped, gpuSkipped, cpuLoss, gpuLoss);
  std::printf("  after the skipped step and one update: loss CPU %.9g, device %.9g\n", cpuLoss, gpuLoss);
  EXPECT_NEAR(gpuLoss, cpuLoss, 1e-4 * std::fabs(cpuLoss));
}

TEST(CudaDeviceEngine, ReportsABadTokenIdAtItsPosition) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  const plan::Plan &plan = test::gptPlan();
  BothEngines both(plan, 1);
  ASSERT_NE(both.gpu, nullptr) << both.error;
  runtime::Engine *cpu = both.cpu.get();
  device::DeviceEngine *gpu = both.gpu.get();
  std::string error;
  test::fillRandomly(*cpu, 7);
  for (const plan::Input &input : plan.inputs) {
    if (input.name == "tokens") {
      cpu->as<int32_t>(input.buffer)[50] = -1;
      cpu->as<int32_t>(input.buffer)[37] = 1 << 20;
    }
    ASSERT_EQ(upload(*cpu, *gpu, input.buffer), "");
  }
  // The first bad position, in the first step that checks, as the CPU engine's error names it.
  error = gpu->run("train_step", runtime::RunContext());
  EXPECT_NE(error.find("(embedding at 'embedding.word_embeddings'): an id or label at position 37"),
            std::string::npos)
      << error;
  EXPECT_NE(cpu->run("train_step", runtime::RunContext()).find("at position 37"), std::string::npos);
  // Good ids again: the status words are reset at every run.
  test::fillInputs(*cpu, 8);
  for (const plan::Input &input : plan.inputs)
    ASSERT_EQ(upload(*cpu, *gpu, input.buffer), "");
  EXPECT_EQ(gpu->run("train_step", runtime::RunContext()), "");
}

TEST(CudaDeviceEngine, RefusesTensorParallelPlans) {
  test::SimulatedKernels &kernels = test::simulatedKernels();
  cudasim::SimulatedBackend backend(kernels.library, 1);
  const codegen::KernelSet set = codegen::generateKernels(test::shardedGptPlan());
  std::string error;
  EXPECT_EQ(device::DeviceEngine::create(test::shardedGptPlan(), set, backend, error), nullptr);
  EXPECT_NE(error.find("no tensor-parallel communicator was given"), std::string::npos) << error;
  EXPECT_NE(error.find("2 tensor-parallel"), std::string::npos) << error;
}

} // namespace
