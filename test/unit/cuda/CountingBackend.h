//===- CountingBackend.h - A DeviceBackend that counts what is asked of another ---*- C++ -*-===//
//
// The engine comparison runs the device engine over this wrapper, so that the counts it reports and checks
// (kernel launches, GEMMs, host copies inside one program run) come from the calls themselves, on the simulator
// and on a GPU alike, without each backend keeping counters of its own.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_COUNTINGBACKEND_H
#define MEGATRON_TEST_UNIT_CUDA_COUNTINGBACKEND_H

#include "runtime/device/DeviceBackend.h"

namespace megatron::test {

class CountingBackend : public device::DeviceBackend {
public:
  explicit CountingBackend(device::DeviceBackend &inner) : inner(inner) {}

  std::string describe() const override { return inner.describe(); }
  void *allocate(std::size_t bytes, std::string &error) override { return inner.allocate(bytes, error); }
  void release(void *memory) override { inner.release(memory); }
  std::string copyToDevice(void *device, const void *host, std::size_t bytes) override {
    ++hostCopies;
    return inner.copyToDevice(device, host, bytes);
  }
  std::string copyToHost(void *host, const void *device, std::size_t bytes) override {
    ++hostCopies;
    return inner.copyToHost(host, device, bytes);
  }
  std::string copyOnDevice(void *destination, const void *source, std::size_t bytes) override {
    return inner.copyOnDevice(destination, source, bytes);
  }
  std::string fill(void *device, unsigned char value, std::size_t bytes) override {
    return inner.fill(device, value, bytes);
  }
  std::string prepare(const std::vector<codegen::CudaKernel> &kernels) override { return inner.prepare(kernels); }
  std::string launch(const codegen::CudaKernel &kernel, void **args) override {
    ++launches;
    return inner.launch(kernel, args);
  }
  std::string gemm(const device::Gemm &call) override {
    ++gemms;
    return inner.gemm(call);
  }
  std::string synchronize() override { return inner.synchronize(); }

  /// Kernel launches, GEMMs, and host copies in either direction, since construction.
  int launches = 0, gemms = 0, hostCopies = 0;

private:
  device::DeviceBackend &inner;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_COUNTINGBACKEND_H
