//===- DeviceMemory.h - One allocation on a DeviceBackend, released with its owner ---*- C++ -*-===//
//
// The backend-generic checks (StepChecker, OptimizerKernelChecks) hold their device memory in these, so that a
// check that returns early releases what it allocated on any backend, a GPU's included.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_DEVICEMEMORY_H
#define MEGATRON_TEST_UNIT_CUDA_DEVICEMEMORY_H

#include "runtime/device/DeviceBackend.h"

#include <cstddef>
#include <string>
#include <utility>

namespace megatron::test {

class DeviceMemory {
public:
  DeviceMemory() = default;
  /// `bytes` on `backend`; empty (false) with `error` set when the backend refuses.
  DeviceMemory(device::DeviceBackend &backend, std::size_t bytes, std::string &error)
      : backend(&backend), memory(backend.allocate(bytes, error)), size(memory ? bytes : 0) {}
  ~DeviceMemory() { reset(); }
  DeviceMemory(DeviceMemory &&other) noexcept { *this = std::move(other); }
  DeviceMemory &operator=(DeviceMemory &&other) noexcept {
    if (this != &other) {
      reset();
      backend = std::exchange(other.backend, nullptr);
      memory = std::exchange(other.memory, nullptr);
      size = std::exchange(other.size, 0);
    }
    return *this;
  }
  DeviceMemory(const DeviceMemory &) = delete;
  DeviceMemory &operator=(const DeviceMemory &) = delete;

  explicit operator bool() const { return memory != nullptr; }
  std::byte *data() const { return static_cast<std::byte *>(memory); }
  std::size_t bytes() const { return size; }

private:
  void reset() {
    if (memory)
      backend->release(memory);
    memory = nullptr;
  }

  device::DeviceBackend *backend = nullptr;
  void *memory = nullptr;
  std::size_t size = 0;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_DEVICEMEMORY_H
