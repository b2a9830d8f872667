//===- DeviceTest.cpp - The CUDA device probe ----------------------------------===//
//
// On a machine without a GPU or driver (CI, the development VMs) the probe must say so plainly; on one with a GPU
// it must describe it. The test checks whichever holds here.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Device.h"
#include "runtime/cuda/Nvrtc.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

using namespace megatron::cuda;

namespace {

bool driverLoads() {
  void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver)
    dlclose(driver);
  return driver != nullptr;
}

TEST(CudaDevice, ProbeSaysWhyThereIsNoDevice) {
  DeviceProbe probe = probeDevices();
  if (!probe.devices.empty())
    GTEST_SKIP() << "this machine has a GPU: " << describe(probe.devices.front());
  EXPECT_EQ(probe.reason.rfind("no CUDA device: ", 0), 0u) << probe.reason;
  if (!haveNvrtc()) {
    EXPECT_NE(probe.reason.find("this build has no CUDA support"), std::string::npos) << probe.reason;
  } else if (!driverLoads()) {
    EXPECT_EQ(probe.reason, "no CUDA device: cudaGetDeviceCount returned cudaErrorInsufficientDriver (35): no NVIDIA "
                            "driver is loaded on this machine (libcuda.so.1 cannot be loaded)");
  }
  std::string error;
  EXPECT_FALSE(selectCudaDevice(0, error));
  EXPECT_EQ(error, probe.reason);
}

TEST(CudaDevice, ProbeDescribesTheGpus) {
  DeviceProbe probe = probeDevices();
  if (probe.devices.empty())
    GTEST_SKIP() << probe.reason;
  for (const DeviceInfo &device : probe.devices) {
    EXPECT_FALSE(device.name.empty());
    EXPECT_GE(device.arch(), 50);
    EXPECT_GT(device.totalMemoryBytes, 0);
    EXPECT_GT(device.multiprocessors, 0);
  }
  std::string error;
  EXPECT_FALSE(selectCudaDevice(int(probe.devices.size()), error));
  EXPECT_EQ(error.rfind("no CUDA device " + std::to_string(probe.devices.size()), 0), 0u) << error;
  EXPECT_TRUE(selectCudaDevice(0, error));
}

TEST(CudaDevice, DescribeNamesArchitectureAndMemory) {
  DeviceInfo h100{0, "NVIDIA H100 80GB HBM3", 9, 0, int64_t(85) << 30, 132};
  EXPECT_EQ(describe(h100), "cuda:0 NVIDIA H100 80GB HBM3, compute capability 9.0 (sm_90), 132 SMs, 85.0 GiB");
}

} // namespace
