//===- DeviceEngineTest.cpp - Whole programs on the device engine over the simulator against the CPU engine ---===//
//
// EngineComparison.h over the host simulator: the plan's arenas in (simulated) device memory, every step launched
// in order (generated kernels, GEMMs), nothing copied from the host between steps; the losses and every parameter
// gradient against the CPU engine, then whole training iterations with the device optimizer, fp16's overflow
// skip and a bad token id. GpuEngineTest runs the same comparisons on a GPU.
//
//===----------------------------------------------------------------------===//

#include "EngineComparison.h"
#include "SimulatedKernels.h"
#include "TestModels.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/device/DeviceEngine.h"

#include <gtest/gtest.h>

using namespace megatron;

namespace {

/// f32 throughout: the simulator and the CPU differ only in summation order and libm, ~1e-7 per op (measured:
/// losses bitwise, gradients at most 9.6e-7 of the tensor's scale).
///
/// 16-bit activations: both backends compute each value in f32 and round it once, but from sums in another order,
/// so now and then a value rounds to the neighbouring 16-bit number: one unit in the last place (bf16 2^-8, f16
/// 2^-11 relative), which then flows on through the rest of the program. On top of that the attention runs on
/// tensor cores (AttentionTensorCore.cuh), which round the probabilities and dS to 16 bits before their products
/// where the CPU keeps them in f32: about 2 units of the outputs' scale per attention step, carried into every
/// gradient below it. The gradients (f32 master gradients accumulated from 16-bit operands) are allowed four
/// units of the tensor's scale; the loss, a mean over tokens in f32, 1e-4. Measured: bf16 gradients 8.0e-3 (loss
/// 1.7e-5), f16 8.6e-4 (loss 1.3e-6).
test::EngineTolerances simulatorTolerances(plan::DType compute) {
  switch (compute) {
  case plan::DType::BF16:
    return {/*loss=*/1e-4, /*gradient=*/0x1p-6};
  case plan::DType::F16:
    return {/*loss=*/1e-4, /*gradient=*/0x1p-9};
  default:
    return {/*loss=*/1e-5, /*gradient=*/1e-5};
  }
}

/// Four iterations, f32 on both sides, differing in summation order (~1e-7 per op), which four updates carry on.
constexpr test::TrainingTolerances kSimulatorTraining{/*loss=*/1e-5, /*norm=*/1e-4, /*meanParameter=*/1e-4};
/// The f16 losses after a skipped step and one update.
constexpr double kSimulatorFp16Loss = 1e-4;

std::unique_ptr<cudasim::SimulatedBackend> simulator() {
  std::string error;
  std::unique_ptr<cudasim::SimulatedBackend> backend = test::newSimulatedBackend(error);
  EXPECT_NE(backend, nullptr) << error;
  return backend;
}

class CudaDeviceEngineModels : public ::testing::TestWithParam<test::EngineComparisonModel> {};

TEST_P(CudaDeviceEngineModels, TrainStepMatchesTheCpuEngine) {
  std::unique_ptr<cudasim::SimulatedBackend> backend = simulator();
  ASSERT_NE(backend, nullptr);
  test::expectTrainStepMatches(GetParam(), *backend,
                               test::fusedGeluTolerances(GetParam(), simulatorTolerances(GetParam().compute)));
}

INSTANTIATE_TEST_SUITE_P(EveryTestModel, CudaDeviceEngineModels,
                         ::testing::ValuesIn(test::engineComparisonModels()),
                         [](const ::testing::TestParamInfo<test::EngineComparisonModel> &info) {
                           return info.param.id;
                         });

// The gradient norms stay above 1, so clipping takes part.
TEST(CudaDeviceEngine, FourTrainingIterationsMatchTheCpuTrainer) {
  std::unique_ptr<cudasim::SimulatedBackend> backend = simulator();
  ASSERT_NE(backend, nullptr);
  test::expectTrainingIterationsMatch(*backend, 4, kSimulatorTraining);
}

TEST(CudaDeviceEngine, Fp16OverflowSkipsTheStepAsOnTheCpu) {
  std::unique_ptr<cudasim::SimulatedBackend> backend = simulator();
  ASSERT_NE(backend, nullptr);
  test::expectFp16OverflowSkipsTheStep(*backend, kSimulatorFp16Loss);
}

TEST(CudaDeviceEngine, ReportsABadTokenIdAtItsPosition) {
  std::unique_ptr<cudasim::SimulatedBackend> backend = simulator();
  ASSERT_NE(backend, nullptr);
  test::expectBadTokenIdReportedAtItsPosition(*backend);
}

TEST(CudaDeviceEngine, RefusesTensorParallelPlans) {
  std::unique_ptr<cudasim::SimulatedBackend> backend = simulator();
  ASSERT_NE(backend, nullptr);
  const codegen::KernelSet set = codegen::generateKernels(test::shardedGptPlan());
  std::string error;
  EXPECT_EQ(device::DeviceEngine::create(test::shardedGptPlan(), set, *backend, error), nullptr);
  EXPECT_NE(error.find("no tensor-parallel communicator was given"), std::string::npos) << error;
  EXPECT_NE(error.find("2 tensor-parallel"), std::string::npos) << error;
}

} // namespace
