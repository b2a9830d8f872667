//===- GpuStepsTest.cpp - Every generated kernel of the test models on a GPU against the CPU engine ---===//
//
// The GPU run of SimulatedStepsTest's checks: every generated step of every test model (ModelStepChecks.h), its
// kernels compiled by NVRTC and launched on cuda::createCudaBackend, on the CPU's inputs, every output against
// the CPU engine's within GpuTolerances.h's kGpuSteps. Each model prints its worst differences per op. Skips
// without a device (GpuBackend.h).
//
//===----------------------------------------------------------------------===//

#include "GpuBackend.h"
#include "GpuTolerances.h"
#include "ModelStepChecks.h"

#include <gtest/gtest.h>

using namespace megatron;

namespace {

class CudaGpuModelSteps : public test::GpuTest, public ::testing::WithParamInterface<test::StepCheckModel> {};

TEST_P(CudaGpuModelSteps, MatchTheCpuEngine) {
  // Each rank of a sharded model gets a backend of its own.
  EXPECT_EQ(test::checkModelSteps(GetParam(), test::newGpuBackend, test::kGpuSteps), "");
}

INSTANTIATE_TEST_SUITE_P(EveryTestModel, CudaGpuModelSteps, ::testing::ValuesIn(test::stepCheckModels()),
                         [](const ::testing::TestParamInfo<test::StepCheckModel> &info) { return info.param.id; });

} // namespace
