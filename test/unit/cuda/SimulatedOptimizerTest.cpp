//===- SimulatedOptimizerTest.cpp - The optimizer kernels in the simulator against runtime/cpu ---===//
//
// OptimizerKernelChecks.h over the host simulator. Its kernels are compiled without contracting multiply-adds,
// so AdamW, done operation by operation as the CPU does it with the same roundings, and the scale are equal bit
// for bit; the sum of squares adds exact squares in double in another order (within 1e-12). GpuOptimizerTest runs
// the same checks on a GPU.
//
//===----------------------------------------------------------------------===//

#include "OptimizerKernelChecks.h"
#include "SimulatedKernels.h"

#include <gtest/gtest.h>

using namespace megatron;

namespace {

constexpr double kAdamwBitForBit = 0, kSumOfSquares = 1e-12, kScaleBitForBit = 0;

TEST(CudaSimulatedOptimizer, AdamwEqualsTheCpuStep) {
  std::string error;
  std::unique_ptr<cudasim::SimulatedBackend> backend = test::newSimulatedBackend(error);
  ASSERT_NE(backend, nullptr) << error;
  EXPECT_EQ(test::checkAdamw(*backend, kAdamwBitForBit), "");
}

TEST(CudaSimulatedOptimizer, SumOfSquaresEqualsTheCpuSum) {
  std::string error;
  std::unique_ptr<cudasim::SimulatedBackend> backend = test::newSimulatedBackend(error);
  ASSERT_NE(backend, nullptr) << error;
  EXPECT_EQ(test::checkSumOfSquares(*backend, kSumOfSquares), "");
}

TEST(CudaSimulatedOptimizer, ScaleEqualsTheCpuScale) {
  std::string error;
  std::unique_ptr<cudasim::SimulatedBackend> backend = test::newSimulatedBackend(error);
  ASSERT_NE(backend, nullptr) << error;
  EXPECT_EQ(test::checkScale(*backend, kScaleBitForBit), "");
}

} // namespace
