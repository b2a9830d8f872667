//===- GpuOptimizerTest.cpp - The optimizer kernels on a GPU against runtime/cpu ---===//
//
// The GPU run of SimulatedOptimizerTest's checks (OptimizerKernelChecks.h) on cuda::createCudaBackend, within
// GpuTolerances.h's optimizer tolerances. Skips without a device (GpuBackend.h).
//
//===----------------------------------------------------------------------===//

#include "GpuBackend.h"
#include "GpuTolerances.h"
#include "OptimizerKernelChecks.h"

#include <gtest/gtest.h>

using namespace megatron;

namespace {

using CudaGpuOptimizer = test::GpuTest;

TEST_F(CudaGpuOptimizer, AdamwMatchesTheCpuStep) { EXPECT_EQ(test::checkAdamw(*backend, test::kGpuAdamw), ""); }

TEST_F(CudaGpuOptimizer, SumOfSquaresMatchesTheCpuSum) {
  EXPECT_EQ(test::checkSumOfSquares(*backend, test::kGpuSumOfSquares), "");
}

TEST_F(CudaGpuOptimizer, ScaleEqualsTheCpuScale) { EXPECT_EQ(test::checkScale(*backend, test::kGpuScale), ""); }

} // namespace
