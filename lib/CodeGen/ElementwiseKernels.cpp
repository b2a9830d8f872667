//===- ElementwiseKernels.cpp - fill, zero, accumulate, cast, add, add_bias, sum_rows ===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

namespace megatron::codegen::detail {

std::vector<CudaKernel> several(std::initializer_list<const KernelEmitter *> emitters, std::string &error) {
  std::vector<CudaKernel> kernels;
  for (const KernelEmitter *emitter : emitters) {
    CudaKernel kernel = emitter->finish(error);
    if (!error.empty())
      return {};
    kernels.push_back(std::move(kernel));
  }
  return kernels;
}

std::vector<CudaKernel> single(const KernelEmitter &emitter, std::string &error) {
  return several({&emitter}, error);
}

std::vector<CudaKernel> emitElementwise(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const std::string &op = step.op;
  KernelEmitter e(plan, step, "", {"Elementwise.cuh"});
  if (op == "fill" && e.flag("loss_seed")) {
    // The backward's seed times fp16's loss scale, which changes from step to step (RunContext::lossScale).
    const int64_t n = e.outBuffer(0).numElements();
    std::string scaled = literal(e.requiredDouble("value")) + " * " + e.runtime("loss_scale", "double");
    e.body(deviceCall("fill", {e.outType(0), num(n)}, {e.out(0), scaled}));
    e.launch = gridStride(n);
  } else if (op == "fill" || op == "zero") {
    const int64_t n = e.outBuffer(0).numElements();
    const double value = op == "fill" ? e.requiredDouble("value") : 0.0;
    e.body(deviceCall("fill", {e.outType(0), num(n)}, {e.out(0), literal(value)}));
    e.launch = gridStride(n);
  } else if (op == "shard_slice") {
    // This rank's block along `dim` of a replicated value: y[o, c] = x[o, rank·CHUNK + c], no communication.
    const std::vector<int64_t> &whole = e.inBuffer(0).shape, &block = e.outBuffer(0).shape;
    const int64_t dim = e.requiredInt("dim");
    if (dim < 0 || dim >= int64_t(block.size()) || block.size() != whole.size()) {
      error = "shard_slice's dim " + std::to_string(dim) + " is not a dimension of both operands";
      return {};
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d)
      outer *= block[size_t(d)];
    for (size_t d = size_t(dim) + 1; d < block.size(); ++d)
      inner *= block[d];
    const int64_t chunk = block[size_t(dim)] * inner, fullChunk = whole[size_t(dim)] * inner;
    e.body(deviceCall("shardSlice", {e.inType(0), e.outType(0), num(outer), num(chunk), num(fullChunk)},
                      {e.in(0), e.out(0), e.runtime("tp_rank", "int")}));
    e.launch = gridStride(outer * chunk);
  } else if (op == "cast") {
    // Mixed precision's conversions: a parameter to its 16-bit copy, a 16-bit gradient back to f32.
    const int64_t n = e.outBuffer(0).numElements();
    e.body(deviceCall("convert", {e.inType(0), e.outType(0), num(n)}, {e.in(0), e.out(0)}));
    e.launch = gridStride(n);
  } else if (op == "accumulate") {
    const int64_t n = e.inBuffer(0).numElements();
    e.body(deviceCall("accumulate", {e.inType(0), e.outType(0), num(n)}, {e.in(0), e.out(0)}));
    e.launch = gridStride(n);
  } else if (op == "add") {
    const int64_t n = e.outBuffer(0).numElements();
    e.body(deviceCall("add", {e.inType(0), e.inType(1), e.outType(0), num(n)}, {e.in(0), e.in(1), e.out(0)}));
    e.launch = gridStride(n);
  } else if (op == "add_bias") {
    const int64_t cols = e.inBuffer(1).numElements();
    const int64_t rows = cols > 0 ? e.inBuffer(0).numElements() / cols : 0;
    e.body(deviceCall("addBias", {e.inType(0), e.inType(1), e.outType(0), num(rows), num(cols)},
                      {e.in(0), e.in(1), e.out(0)}));
    e.launch = gridStride(rows * cols);
  } else { // sum_rows: a bias gradient, db[c] += Σ_r dy[r, c]
    const int64_t cols = e.outBuffer(0).numElements();
    const int64_t rows = cols > 0 ? e.inBuffer(0).numElements() / cols : 0;
    e.body(deviceCall("sumRows", {e.inType(0), e.outType(0), num(rows), num(cols)}, {e.in(0), e.out(0)}));
    e.launch = perColumnTile(cols);
  }
  return single(e, error);
}

} // namespace megatron::codegen::detail
