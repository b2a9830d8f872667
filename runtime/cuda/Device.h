//===- Device.h - Which CUDA devices this process can use --------*- C++ -*-===//
//
// Probes the GPUs through the CUDA runtime, which loads the driver (libcuda) lazily: the binaries never link
// libcuda, so they start on machines without a driver and say why there is no device. MLIR-free and plain C++,
// for megatron-run.
//
// megatron-run --device cuda (to be wired in runtime/train and tools/megatron-run) calls selectCudaDevice before
// it compiles anything: on failure it prints the message, which begins "no CUDA device: ", and exits with code 1.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_DEVICE_H
#define MEGATRON_RUNTIME_CUDA_DEVICE_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace megatron::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;                  ///< "NVIDIA H100 80GB HBM3"
  int major = 0, minor = 0;          ///< compute capability: 9.0 on H100
  int64_t totalMemoryBytes = 0;
  int multiprocessors = 0;
  /// The architecture number NVRTC compiles for: major·10 + minor (90).
  int arch() const { return major * 10 + minor; }
};

struct DeviceProbe {
  std::vector<DeviceInfo> devices;
  /// Why `devices` is empty: "no CUDA device: cudaGetDeviceCount returned cudaErrorInsufficientDriver (35): no
  /// NVIDIA driver is loaded on this machine (libcuda.so.1 cannot be loaded)". Empty when devices were found.
  std::string reason;
};

/// Asks the CUDA runtime for every device. Never fails: without a GPU, a driver or CUDA support in this build,
/// `devices` is empty and `reason` says which.
DeviceProbe probeDevices();

/// The device `index` (as CUDA numbers them, after CUDA_VISIBLE_DEVICES), or nullopt with `error` set to a
/// message beginning "no CUDA device" that names the cause (including an index past the devices found).
std::optional<DeviceInfo> selectCudaDevice(int index, std::string &error);

/// One line per device: "cuda:0 NVIDIA H100 80GB HBM3, compute capability 9.0 (sm_90), 132 SMs, 79.1 GiB".
std::string describe(const DeviceInfo &device);

} // namespace megatron::cuda

#endif // MEGATRON_RUNTIME_CUDA_DEVICE_H
