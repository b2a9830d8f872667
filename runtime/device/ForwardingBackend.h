//===- ForwardingBackend.h - A DeviceBackend that passes every call to another ---*- C++ -*-===//
//
// The base of backends that watch another one (the tests' CountingBackend, the GPU benchmark's per-kernel timer):
// each call goes to `inner` unchanged, and a subclass overrides only the calls it observes.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_FORWARDINGBACKEND_H
#define MEGATRON_RUNTIME_DEVICE_FORWARDINGBACKEND_H

#include "runtime/device/DeviceBackend.h"

namespace megatron::device {

class ForwardingBackend : public DeviceBackend {
public:
  explicit ForwardingBackend(DeviceBackend &inner) : inner(inner) {}

  std::string describe() const override { return inner.describe(); }
  void *allocate(std::size_t bytes, std::string &error) override { return inner.allocate(bytes, error); }
  void release(void *memory) override { inner.release(memory); }
  std::string copyToDevice(void *device, const void *host, std::size_t bytes) override {
    return inner.copyToDevice(device, host, bytes);
  }
  std::string copyToHost(void *host, const void *device, std::size_t bytes) override {
    return inner.copyToHost(host, device, bytes);
  }
  std::string copyOnDevice(void *destination, const void *source, std::size_t bytes) override {
    return inner.copyOnDevice(destination, source, bytes);
  }
  std::string fill(void *device, unsigned char value, std::size_t bytes) override {
    return inner.fill(device, value, bytes);
  }
  std::string prepare(const std::vector<codegen::CudaKernel> &kernels) override { return inner.prepare(kernels); }
  std::string launch(const codegen::CudaKernel &kernel, void **args) override { return inner.launch(kernel, args); }
  std::string gemm(const Gemm &call) override { return inner.gemm(call); }
  std::string synchronize() override { return inner.synchronize(); }
  std::string createMarker(TimingMarker *&marker) override { return inner.createMarker(marker); }
  void destroyMarker(TimingMarker *marker) override { inner.destroyMarker(marker); }
  std::string recordMarker(TimingMarker *marker) override { return inner.recordMarker(marker); }
  std::string elapsedMilliseconds(TimingMarker *start, TimingMarker *end, double &milliseconds) override {
    return inner.elapsedMilliseconds(start, end, milliseconds);
  }

protected:
  DeviceBackend &inner;
};

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_FORWARDINGBACKEND_H
