//===- LinearGemms.h - The plan's matrix-product steps as cuBLASLt-shaped GEMMs ---*- C++ -*-===//
//
// linear, linear_grad_input and linear_grad_weight with the CPU backend's semantics (runtime/cpu/Linear.cpp):
// y = x·Wᵀ + bias; dx = dy·W, added into dx when the step accumulates; dW += dyᵀ·x (a parameter gradient is
// always accumulated into, across micro-batches). --mt-fuse-elementwise's GeLU fusions use cuBLASLt's epilogues:
// linear_gelu's GELU_AUX(_BIAS) writes pre as the aux matrix and gelu(pre) as D; linear_grad_input_gelu's DGELU
// reads pre as the aux matrix and stores (dy·W)·gelu'(pre). Unlike the CPU backend, which rounds the intermediate
// to a 16-bit type as the unfused pair stored it, the epilogue works on the f32 accumulator (one rounding less).
// Private to runtime/device.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_LINEARGEMMS_H
#define MEGATRON_RUNTIME_DEVICE_LINEARGEMMS_H

#include "runtime/device/DeviceBackend.h"

#include <functional>
#include <optional>
#include <string>

namespace megatron::device {

/// The GEMM that computes `step` of `plan`, whose buffer `id` lives at address(id); or std::nullopt and `error`
/// for an op that is not one of them (BERT's pooler is a generated kernel: lib/CodeGen/cuda/Pooler.cuh).
std::optional<Gemm> linearGemm(const plan::Plan &plan, const plan::Step &step,
                               const std::function<void *(int)> &address, std::string &error);

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_LINEARGEMMS_H
