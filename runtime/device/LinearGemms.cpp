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
  const auto &x = buffer(step.inputs[0]), &w = buffer(step.inputs[1]);
  // A is the first input, B the second (both row-major and whole, so their leading dimension is their width).
  auto shape = [&](int64_t m, int64_t n, int64_t k, bool transposeA, bool transposeB) {
    g.m = m, g.n = n, g.k = k;
    g.a = operand(step.inputs[0], transposeA ? m : k, transposeA);
    g.b = operand(step.inputs[1], transposeB ? k : n, transposeB);
  };
  if (step.op == "linear") {
    // x [rows, in] · weight [out, in]ᵀ (+ bias [out]) → y [rows, out]
    shape(x.numElements() / w.shape[1], w.shape[0], w.shape[1], false, true);
    if (step.inputs.size() > 2) {
      g.bias = address(step.inputs[2]);
      g.biasType = buffer(step.inputs[2]).dtype;
    }
  } else if (step.op == "linear_gelu") {
    // x [rows, in] · weight [out, in]ᵀ (+ bias [out]) → pre [rows, out] (the aux matrix) and gelu(pre) [rows, out]
    if (step.outputs.size() != 2) {
      error = "a linear_gelu step needs two outputs (pre and the activation)";
      return std::nullopt;
    }
    shape(x.numElements() / w.shape[1], w.shape[0], w.shape[1], false, true);
    if (step.inputs.size() > 2) {
      g.bias = address(step.inputs[2]);
      g.biasType = buffer(step.inputs[2]).dtype;
    }
    g.epilogue = GemmEpilogue::GeluAux;
    g.aux = address(step.outputs[0]);
    g.auxType = buffer(step.outputs[0]).dtype;
    g.c = address(step.outputs[1]);
    g.cType = buffer(step.outputs[1]).dtype;
  } else if (step.op == "linear_grad_input" || step.op == "linear_grad_input_gelu") {
    // dy [rows, out] · weight [out, in] → dx [rows, in], added into dx when the step accumulates; the fused form
    // scales it by gelu'(pre) (pre [rows, in], the third input) and always overwrites (DGELU with beta 0)
    shape(x.numElements() / w.shape[0], w.shape[1], w.shape[0], false, false);
    g.beta = step.accumulate[0] ? 1.0f : 0.0f;
    if (step.op == "linear_grad_input_gelu") {
      if (step.inputs.size() != 3 || step.accumulate[0]) {
        error = "a linear_grad_input_gelu step needs three inputs (dy, weight, pre) and an output it overwrites";
        return std::nullopt;
      }
      g.epilogue = GemmEpilogue::DGelu;
      g.aux = address(step.inputs[2]);
      g.auxType = buffer(step.inputs[2]).dtype;
    }
  } else if (step.op == "linear_grad_weight") {
    // dy [rows, out]ᵀ · x [rows, in] → dweight [out, in], always added into (the CPU's beta = 1)
    const auto &dw = buffer(out).shape;
    shape(dw[0], dw[1], x.numElements() / dw[0], true, false);
    g.beta = 1.0f;
  } else {
    error = "the device engine has no GEMM for '" + step.op + "' yet";
    return std::nullopt;
  }
  g.ldc = g.n; // every output is a whole row-major matrix, and so is the aux matrix, laid out like it
  if (g.epilogue != GemmEpilogue::None)
    g.auxLd = g.n;
  return g;
}

} // namespace megatron::device
