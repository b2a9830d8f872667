//===- LinearGemms.cpp - The plan's matrix-product steps as cuBLASLt-shaped GEMMs ---===//

#include "runtime/device/LinearGemms.h"

namespace megatron::device {

std::optional<Gemm> linearGemm(const plan::Plan &plan, const plan::Step &step,
                               const std::function<void *(int)> &address, std::string &error) {
  auto buffer = [&](int id) -> const plan::Buffer & { return plan.buffers[size_t(id)]; };
  auto operand = [&](int id, std::int64_t ld, bool transposed) {
    return GemmOperand{address(id), buffer(id).dtype, ld, transposed};
  };
  Gemm g;
  const int out = step.outputs.empty() ? -1 : step.outputs[0];
  if (out < 0 || step.inputs.size() < 2) {
    error = "a " + step.op + " step needs two inputs and an output";
    return std::nullopt;
  }
  g.c = address(out);
  g.cType = buffer(out).dtype;
  if (step.op == "linear") {
    // x [rows, in] · weight [out, in]ᵀ (+ bias [out]) → y [rows, out]
    const auto &w = buffer(step.inputs[1]).shape;
    g.m = buffer(step.inputs[0]).numElements() / w[1];
    g.n = w[0];
    g.k = w[1];
    g.a = operand(step.inputs[0], g.k, false);
    g.b = operand(step.inputs[1], g.k, true);
    g.ldc = g.n;
    if (step.inputs.size() > 2) {
      g.bias = address(step.inputs[2]);
      g.biasType = buffer(step.inputs[2]).dtype;
    }
  } else if (step.op == "linear_grad_input") {
    // dy [rows, out] · weight [out, in] → dx [rows, in]
    const auto &w = buffer(step.inputs[1]).shape;
    g.m = buffer(step.inputs[0]).numElements() / w[0];
    g.n = w[1];
    g.k = w[0];
    g.a = operand(step.inputs[0], g.k, false);
    g.b = operand(step.inputs[1], g.n, false);
    g.ldc = g.n;
    g.beta = step.accumulate[0] ? 1.0f : 0.0f;
  } else if (step.op == "linear_grad_weight") {
    // dy [rows, out]ᵀ · x [rows, in] → dweight [out, in], added into it
    const auto &dw = buffer(out).shape;
    g.m = dw[0];
    g.n = dw[1];
    g.k = buffer(step.inputs[0]).numElements() / dw[0];
    g.a = operand(step.inputs[0], g.m, true);
    g.b = operand(step.inputs[1], g.n, false);
    g.ldc = g.n;
    g.beta = 1.0f;
  } else {
    error = "the device engine has no GEMM for '" + step.op + "' yet";
    return std::nullopt;
  }
  return g;
}

} // namespace megatron::device
