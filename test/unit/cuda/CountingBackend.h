//===- CountingBackend.h - A DeviceBackend that counts what is asked of another ---*- C++ -*-===//
//
// The engine comparison runs the device engine over this wrapper, so that the counts it reports and checks
// (kernel launches, GEMMs, host copies inside one program run) come from the calls themselves, on the simulator
// and on a GPU alike, without each backend keeping counters of its own.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_COUNTINGBACKEND_H
#define MEGATRON_TEST_UNIT_CUDA_COUNTINGBACKEND_H

#include "runtime/device/ForwardingBackend.h"

namespace megatron::test {

class CountingBackend : public device::ForwardingBackend {
public:
  using ForwardingBackend::ForwardingBackend;

  std::string copyToDevice(void *device, const void *host, std::size_t bytes) override {
    ++hostCopies;
    return inner.copyToDevice(device, host, bytes);
  }
  std::string copyToHost(void *host, const void *device, std::size_t bytes) override {
    ++hostCopies;
    return inner.copyToHost(host, device, bytes);
  }
  std::string launch(const codegen::CudaKernel &kernel, void **args) override {
    ++launches;
    return inner.launch(kernel, args);
  }
  std::string gemm(const device::Gemm &call) override {
    ++gemms;
    return inner.gemm(call);
  }

  /// Kernel launches, GEMMs, and host copies in either direction, since construction.
  int launches = 0, gemms = 0, hostCopies = 0;
};

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_COUNTINGBACKEND_H
