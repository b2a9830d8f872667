//===- GpuEngineTest.cpp - Whole programs on the device engine over a GPU against the CPU engine ---===//
//
// The GPU run of DeviceEngineTest's comparisons (EngineComparison.h) on cuda::createCudaBackend: train_step and
// the evaluation forward of each model, its GEMMs on cuBLASLt, against the CPU engine; four training iterations
// with the device optimizer; fp16's overflow skip; a bad token id. Within GpuTolerances.h's whole-program
// tolerances; each prints what it measured. Skips without a device (GpuBackend.h).
//
//===----------------------------------------------------------------------===//

#include "EngineComparison.h"
#include "GpuBackend.h"
#include "GpuTolerances.h"

#include <gtest/gtest.h>

#include <cstdio>

using namespace megatron;

namespace {

class CudaGpuEngineModels : public test::GpuTest,
                            public ::testing::WithParamInterface<test::EngineComparisonModel> {};

TEST_P(CudaGpuEngineModels, TrainStepMatchesTheCpuEngine) {
  test::expectTrainStepMatches(GetParam(), *backend,
                               test::fusedGeluTolerances(GetParam(), test::gpuEngineTolerances(GetParam().compute)));
  std::printf("  %d kernels compiled by NVRTC, %d from the kernel cache, on this backend so far\n",
              backend->kernelsCompiled(), backend->kernelsFromCache());
}

INSTANTIATE_TEST_SUITE_P(EveryTestModel, CudaGpuEngineModels, ::testing::ValuesIn(test::engineComparisonModels()),
                         [](const ::testing::TestParamInfo<test::EngineComparisonModel> &info) {
                           return info.param.id;
                         });

using CudaGpuEngine = test::GpuTest;

TEST_F(CudaGpuEngine, FourTrainingIterationsMatchTheCpuTrainer) {
  test::expectTrainingIterationsMatch(*backend, 4, test::kGpuTraining);
}

TEST_F(CudaGpuEngine, Fp16OverflowSkipsTheStepAsOnTheCpu) {
  test::expectFp16OverflowSkipsTheStep(*backend, test::kGpuFp16Loss);
}

TEST_F(CudaGpuEngine, ReportsABadTokenIdAtItsPosition) { test::expectBadTokenIdReportedAtItsPosition(*backend); }

} // namespace
