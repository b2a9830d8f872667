//===- EngineValues.h - A CPU engine's buffers as values and as device storage ---*- C++ -*-===//
//
// The CPU engine keeps bf16 and f16 buffers as f32 (Engine::storageType); a device keeps them as two bytes. The
// backend-generic checks read the CPU's values through these, and build the bytes they upload to a device from
// them, rounded as a kernel's store rounds (DeviceValues.h).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_ENGINEVALUES_H
#define MEGATRON_TEST_UNIT_CUDA_ENGINEVALUES_H

#include "runtime/device/DeviceEngine.h"
#include "runtime/engine/Engine.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace megatron::test {

/// Element i of buffer `id` as the CPU engine holds it.
double cpuValue(runtime::Engine &engine, int id, int64_t i);
/// Every element of buffer `id` as the CPU engine holds it.
std::vector<double> cpuValues(runtime::Engine &engine, int id);
/// Buffer `id` of the CPU engine in the buffer's device storage type (numElements · deviceBytes bytes).
std::vector<std::byte> deviceStorage(runtime::Engine &engine, int id);
/// `count` elements of `dtype` in device storage at `data`, as doubles.
std::vector<double> storedValues(plan::DType dtype, const std::byte *data, int64_t count);

/// The CPU engine's buffer `id`, rounded to its device storage, copied into the device engine's: "" or an error.
std::string upload(runtime::Engine &cpu, device::DeviceEngine &device, int id);
/// The device engine's buffer `id` as doubles (`error` set when the download fails).
std::vector<double> deviceValues(device::DeviceEngine &device, int id, std::string &error);
/// |device − cpu| at its worst, relative to the CPU tensor's scale (its largest |value|); inf for a non-finite
/// device value.
double relativeDifference(const std::vector<double> &device, const std::vector<double> &cpu);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_ENGINEVALUES_H
