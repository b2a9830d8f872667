//===- SharedSimulatedDevice.h - One simulated device, several ranks' streams ---*- C++ -*-===//
//
// The same-device communicator's tests run several ranks on one device, each rank a thread with its own
// DeviceBackend, as on one GPU with a stream per rank. Here the device is one SimulatedBackend (so that every
// rank's allocations are device memory to every other rank) and each rank's backend is a Stream that forwards to
// it under one lock: the simulator runs one call at a time, and every call completes before it returns, so a
// stream's synchronize has nothing to wait for.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SHAREDSIMULATEDDEVICE_H
#define MEGATRON_TEST_UNIT_CUDA_SHAREDSIMULATEDDEVICE_H

#include "sim/SimulatedBackend.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace megatron::test {

class SharedSimulatedDevice {
public:
  explicit SharedSimulatedDevice(cudasim::KernelLibrary &library)
      : device(library, int(std::max(1u, std::thread::hardware_concurrency()))) {}

  class Stream final : public device::DeviceBackend {
  public:
    explicit Stream(SharedSimulatedDevice &shared) : shared(shared) {}
    std::string describe() const override { return "the host CUDA simulator (a rank's stream)"; }
    void *allocate(std::size_t bytes, std::string &error) override { return locked([&] { return shared.device.allocate(bytes, error); }); }
    void release(void *memory) override {
      locked([&] {
        shared.device.release(memory);
        return 0;
      });
    }
    std::string copyToDevice(void *d, const void *h, std::size_t bytes) override { return locked([&] { return shared.device.copyToDevice(d, h, bytes); }); }
    std::string copyToHost(void *h, const void *d, std::size_t bytes) override { return locked([&] { return shared.device.copyToHost(h, d, bytes); }); }
    std::string copyOnDevice(void *to, const void *from, std::size_t bytes) override {
      return locked([&] { return shared.device.copyOnDevice(to, from, bytes); });
    }
    std::string fill(void *d, unsigned char value, std::size_t bytes) override { return locked([&] { return shared.device.fill(d, value, bytes); }); }
    std::string prepare(const std::vector<codegen::CudaKernel> &kernels) override { return locked([&] { return shared.device.prepare(kernels); }); }
    std::string launch(const codegen::CudaKernel &kernel, void **args) override {
      ++launches;
      return locked([&] { return shared.device.launch(kernel, args); });
    }
    std::string gemm(const device::Gemm &call) override { return locked([&] { return shared.device.gemm(call); }); }
    std::string synchronize() override {
      ++synchronizations;
      return {};
    }

    // The device's markers: every call has completed when it returns, so the host's clock is every stream's.
    std::string createMarker(device::TimingMarker *&marker) override {
      return locked([&] { return shared.device.createMarker(marker); });
    }
    void destroyMarker(device::TimingMarker *marker) override {
      locked([&] {
        shared.device.destroyMarker(marker);
        return 0;
      });
    }
    std::string recordMarker(device::TimingMarker *marker) override {
      return locked([&] { return shared.device.recordMarker(marker); });
    }
    std::string elapsedMilliseconds(device::TimingMarker *start, device::TimingMarker *end,
                                    double &milliseconds) override {
      return locked([&] { return shared.device.elapsedMilliseconds(start, end, milliseconds); });
    }

    int launches = 0, synchronizations = 0; ///< this stream's, for the tests

  private:
    template <typename F> std::invoke_result_t<F> locked(F &&f) {
      std::lock_guard<std::mutex> lock(shared.mutex);
      return f();
    }
    SharedSimulatedDevice &shared;
  };

  /// `n` streams of this device, one per rank.
  std::vector<std::unique_ptr<Stream>> streams(int n) {
    std::vector<std::unique_ptr<Stream>> result;
    for (int r = 0; r < n; ++r)
      result.push_back(std::make_unique<Stream>(*this));
    return result;
  }
  static std::vector<device::DeviceBackend *> backends(const std::vector<std::unique_ptr<Stream>> &streams) {
    std::vector<device::DeviceBackend *> result;
    for (const auto &s : streams)
      result.push_back(s.get());
    return result;
  }

private:
  cudasim::SimulatedBackend device;
  std::mutex mutex;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_SHAREDSIMULATEDDEVICE_H
