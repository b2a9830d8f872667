//===- DeviceValues.h - Elements of device memory read and written on the host ---*- C++ -*-===//
//
// Element i of a buffer stored as a GPU stores it (bf16 and f16 as two bytes) read as a double, or written from
// one with the device's rounding (to nearest even): how the step checker, the engine comparison and the simulated
// backend's GEMMs move values between the CPU engine (16-bit values kept as f32) and device memory, on any
// backend. The 16-bit conversions are the simulator's (sim/SixteenBit.h): exact host code with no simulator
// runtime behind it, checked against cpu::roundToBf16 / roundToF16.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_DEVICEVALUES_H
#define MEGATRON_TEST_UNIT_CUDA_DEVICEVALUES_H

#include "sim/SixteenBit.h"

#include "megatron/Plan/Plan.h"

#include <cstddef>
#include <cstdint>

namespace megatron::test {

inline double readDevice(plan::DType dtype, const std::byte *p, int64_t i) {
  switch (dtype) {
  case plan::DType::F32:
    return reinterpret_cast<const float *>(p)[i];
  case plan::DType::F64:
    return reinterpret_cast<const double *>(p)[i];
  case plan::DType::BF16:
    return __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p)[i]);
  case plan::DType::F16:
    return __half2float(reinterpret_cast<const __half *>(p)[i]);
  case plan::DType::I32:
    return reinterpret_cast<const int32_t *>(p)[i];
  case plan::DType::I64:
    return double(reinterpret_cast<const int64_t *>(p)[i]);
  }
  return 0;
}

/// 16-bit formats round `value` once (from f32, as a kernel's store does); every other format stores it exactly
/// when it is representable.
inline void writeDevice(plan::DType dtype, std::byte *p, int64_t i, double value) {
  switch (dtype) {
  case plan::DType::F32:
    reinterpret_cast<float *>(p)[i] = float(value);
    break;
  case plan::DType::F64:
    reinterpret_cast<double *>(p)[i] = value;
    break;
  case plan::DType::BF16:
    reinterpret_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(float(value));
    break;
  case plan::DType::F16:
    reinterpret_cast<__half *>(p)[i] = __float2half_rn(float(value));
    break;
  case plan::DType::I32:
    reinterpret_cast<int32_t *>(p)[i] = int32_t(value);
    break;
  case plan::DType::I64:
    reinterpret_cast<int64_t *>(p)[i] = int64_t(value);
    break;
  }
}

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_DEVICEVALUES_H
