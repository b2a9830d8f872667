//===- Device.cpp - Which CUDA devices this process can use ---------------------===//

#include "runtime/cuda/Device.h"

#include <cstdio>

#if MEGATRON_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#endif

namespace megatron::cuda {

#if MEGATRON_HAVE_CUDA

namespace {

// cudart reports a missing driver and a too-old driver with the same code; telling them apart needs to know
// whether the driver library loads at all. dlopen is what cudart itself does (the binary never links libcuda).
std::string driverDiagnosis(cudaError_t status) {
  if (status != cudaErrorInsufficientDriver && status != cudaErrorNoDevice)
    return cudaGetErrorString(status);
  void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!driver)
    return "no NVIDIA driver is loaded on this machine (libcuda.so.1 cannot be loaded)";
  dlclose(driver);
  if (status == cudaErrorNoDevice)
    return "the NVIDIA driver is loaded but sees no GPU (check CUDA_VISIBLE_DEVICES)";
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  return "the NVIDIA driver is older than this CUDA runtime (" + std::to_string(runtime / 1000) + "." +
         std::to_string(runtime % 1000 / 10) + ") requires";
}

} // namespace

DeviceProbe probeDevices() {
  DeviceProbe probe;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    probe.reason = std::string("no CUDA device: cudaGetDeviceCount returned ") + cudaGetErrorName(status) + " (" +
                   std::to_string(int(status)) + "): " + driverDiagnosis(status);
    return probe;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess)
      continue;
    probe.devices.push_back(
        DeviceInfo{i, prop.name, prop.major, prop.minor, int64_t(prop.totalGlobalMem), prop.multiProcessorCount});
  }
  if (probe.devices.empty())
    probe.reason = "no CUDA device: the CUDA runtime found " + std::to_string(count) +
                   " device(s) but could not read their properties";
  return probe;
}

#else

DeviceProbe probeDevices() {
  DeviceProbe probe;
  probe.reason = "no CUDA device: this build has no CUDA support (configured without the CUDA toolkit or with "
                 "MEGATRON_ENABLE_CUDA=OFF)";
  return probe;
}

#endif

std::optional<DeviceInfo> selectCudaDevice(int index, std::string &error) {
  DeviceProbe probe = probeDevices();
  if (probe.devices.empty()) {
    error = probe.reason;
    return std::nullopt;
  }
  for (const DeviceInfo &device : probe.devices)
    if (device.index == index)
      return device;
  error = "no CUDA device " + std::to_string(index) + ": this machine has " + std::to_string(probe.devices.size()) +
          " (cuda:0 to cuda:" + std::to_string(probe.devices.size() - 1) + ")";
  return std::nullopt;
}

std::string describe(const DeviceInfo &device) {
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB", double(device.totalMemoryBytes) / (1024.0 * 1024.0 * 1024.0));
  return "cuda:" + std::to_string(device.index) + " " + device.name + ", compute capability " +
         std::to_string(device.major) + "." + std::to_string(device.minor) + " (sm_" + std::to_string(device.arch()) +
         "), " + std::to_string(device.multiprocessors) + " SMs, " + memory;
}

} // namespace megatron::cuda
