//===- EngineValues.cpp - A CPU engine's buffers as values and as device storage ---===//

#include "EngineValues.h"

#include "DeviceValues.h"

#include "runtime/device/DeviceBackend.h"

#include <algorithm>
#include <cmath>

namespace megatron::test {

double cpuValue(runtime::Engine &engine, int id, int64_t i) {
  const plan::DType stored = runtime::Engine::storageType(engine.buffer(id).dtype);
  return readDevice(stored, static_cast<const std::byte *>(engine.data(id)), i);
}

std::vector<double> cpuValues(runtime::Engine &engine, int id) {
  const plan::DType stored = runtime::Engine::storageType(engine.buffer(id).dtype);
  return storedValues(stored, static_cast<const std::byte *>(engine.data(id)), engine.buffer(id).numElements());
}

std::vector<std::byte> deviceStorage(runtime::Engine &engine, int id) {
  const plan::Buffer &b = engine.buffer(id);
  std::vector<std::byte> bytes(size_t(b.numElements()) * device::deviceBytes(b.dtype));
  for (int64_t i = 0; i < b.numElements(); ++i)
    writeDevice(b.dtype, bytes.data(), i, cpuValue(engine, id, i));
  return bytes;
}

std::vector<double> storedValues(plan::DType dtype, const std::byte *data, int64_t count) {
  std::vector<double> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    values[size_t(i)] = readDevice(dtype, data, i);
  return values;
}

std::string upload(runtime::Engine &cpu, device::DeviceEngine &device, int id) {
  return device.upload(id, deviceStorage(cpu, id).data());
}

std::vector<double> deviceValues(device::DeviceEngine &device, int id, std::string &error) {
  const plan::Buffer &b = device.plan().buffers[size_t(id)];
  std::vector<std::byte> staging(device.bytes(id));
  error = device.download(id, staging.data());
  return storedValues(b.dtype, staging.data(), b.numElements());
}

double relativeDifference(const std::vector<double> &device, const std::vector<double> &cpu) {
  double scale = 0, worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    scale = std::max(scale, std::fabs(cpu[i]));
    worst = std::max(worst, std::isfinite(device[i]) ? std::fabs(device[i] - cpu[i]) : INFINITY);
  }
  return worst / std::max(scale, 1e-30);
}

} // namespace megatron::test
