//===- GpuBackend.h - The CUDA backend the GPU tests run on, or why they skip ---*- C++ -*-===//
//
// megatron-cuda-gpu-tests runs the backend-generic checks (ModelStepChecks.h, OptimizerKernelChecks.h,
// EngineComparison.h) on cuda::createCudaBackend. On a machine without a GPU or driver, creating the backend
// fails with a message beginning "no CUDA device", and every test skips with that message, so ctest passes on CI;
// any other creation failure on a machine that has a device fails the tests.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_GPUBACKEND_H
#define MEGATRON_TEST_UNIT_CUDA_GPUBACKEND_H

#include "runtime/cuda/CudaBackend.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace megatron::test {

/// A fresh CUDA backend on device 0 with the default kernel cache, or null and `error`.
std::unique_ptr<device::DeviceBackend> newGpuBackend(std::string &error);

/// The backend the tests share, created on first use (kernels prepared on it stay loaded), or null and `error`
/// (the same message at every call).
cuda::CudaBackend *sharedGpuBackend(std::string &error);

/// Whether a creation error says that there is no device to run on (then the tests skip).
bool noGpu(const std::string &error);

/// The fixture of every GPU test: skips, with the reason, when there is no device; fails when there is one but the
/// backend cannot be created.
class GpuTest : public ::testing::Test {
protected:
  void SetUp() override;
  cuda::CudaBackend *backend = nullptr;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_GPUBACKEND_H
