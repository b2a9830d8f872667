//===- GpuBackend.cpp - The CUDA backend the GPU tests run on, or why they skip ---===//

#include "GpuBackend.h"

#include <cstdio>

namespace megatron::test {

std::unique_ptr<device::DeviceBackend> newGpuBackend(std::string &error) {
  return cuda::createCudaBackend(cuda::CudaBackendOptions(), error);
}

cuda::CudaBackend *sharedGpuBackend(std::string &error) {
  static std::string creationError;
  static std::unique_ptr<cuda::CudaBackend> backend = [] {
    std::unique_ptr<cuda::CudaBackend> created = cuda::createCudaBackend(cuda::CudaBackendOptions(), creationError);
    if (created)
      std::printf("the GPU tests run on %s\n", created->describe().c_str());
    return created;
  }();
  error = creationError;
  return backend.get();
}

bool noGpu(const std::string &error) { return error.rfind("no CUDA device", 0) == 0; }

void GpuTest::SetUp() {
  std::string error;
  backend = sharedGpuBackend(error);
  if (backend)
    return;
  if (noGpu(error))
    GTEST_SKIP() << error;
  FAIL() << "a CUDA device is present but the backend cannot be created: " << error;
}

} // namespace megatron::test
