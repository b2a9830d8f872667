//===- MultiRankDeviceTest.cpp - Parallel plans on device engines sharing one device ---===//
//
// Tensor and data parallelism on the device engine, tested on one (simulated) device: every rank is a thread
// with its own DeviceEngine and stream, its groups split off a same-device world (SameDeviceCommunicator.h), and
// next to it the CPU engine of the same plan and rank with its groups split off a thread world. Both start from
// the same parameters and inputs and run two micro-batches of train_step and then finalize_grads; every rank's
// losses and gradients are compared. The collectives carry every difference between ranks (the all-reduces of
// the tensor-parallel layers, the sequence-parallel gathers and scatters, the vocabulary-parallel loss, the
// data-parallel gradient sums), so a collective bound wrongly shows as a wrong loss or gradient.
//
//===----------------------------------------------------------------------===//

#include "RandomFill.h"
#include "SharedSimulatedDevice.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "sim/DeviceValues.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/SameDeviceCommunicator.h"
#include "runtime/engine/Engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <thread>

using namespace megatron;

namespace {

/// Buffer `id` as doubles: from the CPU engine (16-bit values kept as f32) or the device engine (as stored).
std::vector<double> cpuValues(runtime::Engine &cpu, int id) {
  const plan::Buffer &b = cpu.buffer(id);
  std::vector<double> values(size_t(b.numElements()));
  for (int64_t i = 0; i < b.numElements(); ++i)
    values[size_t(i)] = cudasim::readDevice(runtime::Engine::storageType(b.dtype),
                                            static_cast<const std::byte *>(cpu.data(id)), i);
  return values;
}

std::vector<double> deviceValues(device::DeviceEngine &gpu, int id, std::string &error) {
  const plan::Buffer &b = gpu.plan().buffers[size_t(id)];
  std::vector<std::byte> staging(gpu.bytes(id));
  error = gpu.download(id, staging.data());
  std::vector<double> values(size_t(b.numElements()));
  for (int64_t i = 0; i < b.numElements(); ++i)
    values[size_t(i)] = cudasim::readDevice(b.dtype, staging.data(), i);
  return values;
}

std::string upload(runtime::Engine &cpu, device::DeviceEngine &gpu, int id) {
  const plan::Buffer &b = cpu.buffer(id);
  std::vector<std::byte> staging(gpu.bytes(id));
  const std::vector<double> values = cpuValues(cpu, id);
  for (int64_t i = 0; i < b.numElements(); ++i)
    cudasim::writeDevice(b.dtype, staging.data(), i, values[size_t(i)]);
  return gpu.upload(id, staging.data());
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

struct RankResult {
  std::vector<double> cpuLosses, deviceLosses;
  double worstGradient = 0;
  std::string worstParameter;
  int gradients = 0;
  std::vector<std::vector<double>> deviceGradients; // after finalize_grads, per parameter
};

/// The ranks of a tensor x data layout, numbered as megatron-run numbers them: rank = replica·tensor + tpRank.
struct Layout {
  int tensor = 1, data = 1;
  int ranks() const { return tensor * data; }
};

/// One rank: its groups on both worlds, both engines, two micro-batches of train_step and finalize_grads.
std::string runRank(const plan::Plan &plan, Layout layout, int rank, comm::Communicator &cpuWorld,
                    comm::Communicator &deviceWorld, device::DeviceBackend &backend, const codegen::KernelSet &set,
                    RankResult &result) {
  std::string error;
  auto split = [&](comm::Communicator &world, bool tensor, std::unique_ptr<comm::Communicator> &group) {
    const int tp = rank % layout.tensor, replica = rank / layout.tensor;
    if ((tensor ? layout.tensor : layout.data) > 1)
      group = tensor ? world.split(replica, tp, "tp", error) : world.split(tp, replica, "dp", error);
    return error.empty();
  };
  std::unique_ptr<comm::Communicator> cpuTp, cpuDp, gpuTp, gpuDp;
  if (!split(cpuWorld, true, cpuTp) || !split(cpuWorld, false, cpuDp) || !split(deviceWorld, true, gpuTp) ||
      !split(deviceWorld, false, gpuDp))
    return error;
  std::unique_ptr<runtime::Engine> cpu = runtime::Engine::create(plan, error, cpuTp.get(), cpuDp.get());
  if (!cpu)
    return "CPU engine: " + error;
  std::unique_ptr<device::DeviceEngine> gpu =
      device::DeviceEngine::create(plan, set, backend, error, gpuTp.get(), gpuDp.get());
  if (!gpu)
    return "device engine: " + error;

  const int tpRank = rank % layout.tensor, replica = rank / layout.tensor;
  test::fillRandomly(*cpu, 42 + uint64_t(tpRank)); // each tensor-parallel rank its shard; replicas alike
  for (const plan::Param &p : plan.params)
    if (error = upload(*cpu, *gpu, p.buffer); !error.empty())
      return error;
  cpu->zero(plan::Arena::Grads);
  if (error = gpu->zero(plan::Arena::Grads); !error.empty())
    return error;

  for (int64_t microBatch = 0; microBatch < 2; ++microBatch) {
    test::fillInputs(*cpu, 100 + 10 * uint64_t(replica) + uint64_t(microBatch)); // alike over a tp group
    for (const plan::Input &input : plan.inputs)
      if (error = upload(*cpu, *gpu, input.buffer); !error.empty())
        return error;
    runtime::RunContext context;
    context.dropoutSeed = runtime::dropoutSeedFor(1234, 0, 2 * replica + microBatch);
    if (error = cpu->run("train_step", context); !error.empty())
      return "CPU engine: " + error;
    if (error = gpu->run("train_step", context); !error.empty())
      return "device engine: " + error;
    double loss = 0;
    if (error = gpu->loss("train_step", loss); !error.empty())
      return error;
    result.cpuLosses.push_back(cpu->loss("train_step"));
    result.deviceLosses.push_back(loss);
  }
  if (plan.program("finalize_grads")) {
    if (error = cpu->run("finalize_grads", {}); !error.empty())
      return "CPU engine: " + error;
    if (error = gpu->run("finalize_grads", {}); !error.empty())
      return "device engine: " + error;
  }
  for (const plan::Param &p : plan.params) {
    std::vector<double> gradient = deviceValues(*gpu, p.grad, error);
    if (!error.empty())
      return error;
    const double difference = relativeDifference(gradient, cpuValues(*cpu, p.grad));
    ++result.gradients;
    if (!(difference <= result.worstGradient)) {
      result.worstGradient = difference;
      result.worstParameter = p.name;
    }
    result.deviceGradients.push_back(std::move(gradient));
  }
  return {};
}

/// Every rank of `layout` on both engines; the root cause of a failure, or "".
std::string runAll(const plan::Plan &plan, Layout layout, std::vector<RankResult> &results) {
  test::SimulatedKernels &kernels = test::simulatedKernels();
  if (!kernels.error.empty())
    return kernels.error;
  const int n = layout.ranks();
  test::SharedSimulatedDevice sharedDevice(kernels.library);
  std::vector<std::unique_ptr<test::SharedSimulatedDevice::Stream>> streams = sharedDevice.streams(n);
  comm::ThreadWorldOptions options;
  options.timeout = std::chrono::seconds(120); // a rank may compile a kernel for the simulator meanwhile
  std::string error;
  std::unique_ptr<comm::ThreadWorld> deviceWorld =
      device::createSameDeviceWorld(test::SharedSimulatedDevice::backends(streams), error, options);
  if (!deviceWorld)
    return error;
  comm::ThreadWorld cpuWorld(n, options);
  const codegen::KernelSet set = codegen::generateKernels(plan);
  results.assign(size_t(n), RankResult());
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      std::string e = runRank(plan, layout, r, cpuWorld.communicator(r), deviceWorld->communicator(r),
                              *streams[size_t(r)], set, results[size_t(r)]);
      if (!e.empty()) { // no peer may wait for this rank in either world
        cpuWorld.communicator(r).abort(e);
        deviceWorld->communicator(r).abort(e);
      }
      errors[size_t(r)] = e;
      cpuWorld.finished(r);
      deviceWorld->finished(r);
    });
  for (std::thread &t : threads)
    t.join();
  for (int r = 0; r < n; ++r)
    if (!errors[size_t(r)].empty())
      return "rank " + std::to_string(r) + ": " + errors[size_t(r)];
  return {};
}

void expectMatch(const char *model, const plan::Plan &plan, Layout layout, double lossTolerance,
                 double gradientTolerance) {
  std::vector<RankResult> results;
  ASSERT_EQ(runAll(plan, layout, results), "");
  for (size_t r = 0; r < results.size(); ++r) {
    const RankResult &c = results[r];
    std::printf("%s, rank %zu of tp %d x dp %d on one simulated device:\n", model, r, layout.tensor, layout.data);
    for (size_t i = 0; i < c.cpuLosses.size(); ++i)
      std::printf("  loss %zu: CPU %.9g, device %.9g (relative difference %.3g)\n", i, c.cpuLosses[i],
                  c.deviceLosses[i], std::fabs(c.deviceLosses[i] - c.cpuLosses[i]) / std::fabs(c.cpuLosses[i]));
    std::printf("  %d parameter gradients: worst %.3g of the tensor's scale (%s)\n", c.gradients, c.worstGradient,
                c.worstParameter.c_str());
    ASSERT_EQ(c.cpuLosses.size(), 2u);
    for (size_t i = 0; i < c.cpuLosses.size(); ++i)
      EXPECT_NEAR(c.deviceLosses[i], c.cpuLosses[i], lossTolerance * std::fabs(c.cpuLosses[i]))
          << "rank " << r << " micro-batch " << i;
    EXPECT_EQ(c.gradients, int(plan.params.size()));
    EXPECT_LE(c.worstGradient, gradientTolerance) << "rank " << r << ": " << c.worstParameter;
  }
  // After finalize_grads the replicas of a tensor-parallel rank hold the same sums, bit for bit; and the tensor-
  // parallel ranks of one replica the same losses (the vocabulary-parallel loss is all-reduced).
  for (int r = layout.tensor; r < layout.ranks(); ++r)
    EXPECT_EQ(results[size_t(r)].deviceGradients, results[size_t(r % layout.tensor)].deviceGradients) << "rank " << r;
  for (int r = 0; r < layout.ranks(); ++r)
    EXPECT_EQ(results[size_t(r)].deviceLosses, results[size_t(r - r % layout.tensor)].deviceLosses) << "rank " << r;
}

TEST(CudaMultiRankDevice, GptDataParallelMatchesTheCpuEngines) {
  // Two replicas: each runs its own micro-batches, finalize_grads sums their gradients over "dp".
  expectMatch("gpt f32, dp 2", test::parallelGptPlan(1, 2), Layout{1, 2}, 1e-5, 1e-5);
}

TEST(CudaMultiRankDevice, GptTensorAndSequenceParallelMatchesTheCpuEngines) {
  // All-reduces, the sequence-parallel all-gathers and reduce-scatters, the vocabulary-parallel loss, and the
  // layer norms' gradients summed over "tp" by finalize_grads.
  expectMatch("gpt f32, tp 2 + sequence parallel", test::shardedGptPlan(), Layout{2, 1}, 1e-5, 1e-5);
}

TEST(CudaMultiRankDevice, GptTensorParallelBf16MatchesTheCpuEngines) {
  // 16-bit activations all-reduced on the device in bf16 (summed in f32, rounded once, as the CPU rounds the
  // step's output). As in the one-rank bf16 test (DeviceEngineTest), a value now and then rounds to the
  // neighbouring bf16 number where the two backends' kernels sum in another order: two units (2^-7) of a
  // gradient's scale at most; the loss within 1e-5.
  expectMatch("gpt bf16, tp 2 + sequence parallel", test::parallelGptPlan(2, 1, plan::DType::BF16), Layout{2, 1},
              1e-5, 0x1p-7);
}

} // namespace
