//===- DeviceCompute.cpp - A rank's programs on a device backend -----------===//

#include "DeviceCompute.h"

#include "runtime/cpu/Kernels.h"

#include <cstring>
#include <vector>

namespace megatron::train {

namespace {

/// One element between the host's f32 storage of a 16-bit value and the device's two bytes. The host value is
/// rounded first (the CPU engine's values already are; an input written by the loop may not be), so the narrowing
/// is exact.
uint16_t narrow(plan::DType dtype, float value) {
  if (dtype == plan::DType::F16) {
    _Float16 half = static_cast<_Float16>(value);
    uint16_t bits;
    std::memcpy(&bits, &half, sizeof bits);
    return bits;
  }
  float rounded = cpu::roundToBf16(value);
  uint32_t bits;
  std::memcpy(&bits, &rounded, sizeof bits);
  return static_cast<uint16_t>(bits >> 16);
}

float widen(plan::DType dtype, uint16_t bits) {
  if (dtype == plan::DType::F16) {
    _Float16 half;
    std::memcpy(&half, &bits, sizeof half);
    return static_cast<float>(half);
  }
  uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

bool sixteenBit(plan::DType dtype) { return dtype == plan::DType::BF16 || dtype == plan::DType::F16; }

} // namespace

std::unique_ptr<DeviceCompute> DeviceCompute::create(runtime::Engine &host, device::DeviceBackend &backend,
                                                     DeviceRank rank, std::string &error) {
  const plan::Plan &plan = host.plan();
  std::unique_ptr<DeviceCompute> compute(new DeviceCompute(host, backend));
  compute->kernels = codegen::generateKernels(plan);
  compute->engine = device::DeviceEngine::create(plan, compute->kernels, backend, error, rank.tensor, rank.data,
                                                 rank.pipeline, rank.embedding);
  if (!compute->engine)
    return nullptr;
  compute->optimizer =
      device::DeviceOptimizer::create(*compute->engine, backend, error, std::move(rank.norm), rank.data);
  if (!compute->optimizer)
    return nullptr;
  return compute;
}

std::string DeviceCompute::run(const std::string &name, const runtime::RunContext &context) {
  return engine->run(name, context);
}

std::string DeviceCompute::loss(const std::string &name, double &value) { return engine->loss(name, value); }

std::string DeviceCompute::zeroGradients() { return engine->zero(plan::Arena::Grads); }

std::string DeviceCompute::toDevice(int id) {
  const plan::Buffer &b = host.buffer(id);
  if (!sixteenBit(b.dtype))
    return engine->upload(id, host.data(id));
  const float *values = host.as<float>(id);
  std::vector<uint16_t> staging(static_cast<size_t>(b.numElements()));
  for (size_t i = 0; i < staging.size(); ++i)
    staging[i] = narrow(b.dtype, values[i]);
  return engine->upload(id, staging.data());
}

std::string DeviceCompute::toHost(int id, int64_t first, int64_t count) {
  const plan::Buffer &b = host.buffer(id);
  if (count < 0)
    count = b.numElements() - first;
  if (first < 0 || first + count > b.numElements())
    return "elements [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of a buffer of " +
           std::to_string(b.numElements());
  const size_t size = device::deviceBytes(b.dtype);
  const std::byte *from = static_cast<const std::byte *>(engine->address(id)) + first * int64_t(size);
  if (!sixteenBit(b.dtype))
    return backend.copyToHost(static_cast<std::byte *>(host.data(id)) + first * int64_t(size), from,
                              size_t(count) * size);
  std::vector<uint16_t> staging(static_cast<size_t>(count));
  if (std::string error = backend.copyToHost(staging.data(), from, staging.size() * sizeof(uint16_t));
      !error.empty())
    return error;
  float *values = host.as<float>(id) + first;
  for (size_t i = 0; i < staging.size(); ++i)
    values[i] = widen(b.dtype, staging[i]);
  return {};
}

std::string DeviceCompute::optimizerStep(const device::AdamWSettings &adam, double clipGrad, double lossScale,
                                         double &norm, bool *skipped) {
  return optimizer->step(adam, clipGrad, norm, lossScale, skipped);
}

int64_t DeviceCompute::allocatedBytes() const {
  int64_t bytes = 0;
  for (int a = 0; a < plan::kNumArenas; ++a)
    bytes += engine->plan().allocatedBytes(plan::Arena(a));
  return bytes;
}

} // namespace megatron::train
