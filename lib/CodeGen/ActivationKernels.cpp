//===- ActivationKernels.cpp - gelu, swiglu and dropout (with dropout_add), forward and backward ===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

#include <cmath>

namespace megatron::codegen::detail {

uint64_t keepThreshold(double rate) {
  if (!(rate > 0.0))
    return 0;
  if (rate >= 1.0)
    return uint64_t(1) << 32;
  return uint64_t(std::ceil(rate * 4294967296.0));
}

double keepScale(double rate) { return rate >= 1.0 ? 0.0 : 1.0 / (1.0 - rate); }

namespace {

std::vector<CudaKernel> emitDropout(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  KernelEmitter e(plan, step, "", {"Philox.cuh", "Dropout.cuh"});
  const int64_t n = e.outBuffer(0).numElements();
  const double rate = e.requiredDouble("rate");
  // shard_dim: x is this rank's contiguous 1/tp along dimension d; its elements from d on form the runs that
  // draw the full tensor's bits (cpu::DropoutShard).
  uint64_t localChunk = 0, fullChunk = 0;
  if (step.attrs.count("shard_dim")) {
    const std::vector<int64_t> &shape = e.inBuffer(0).shape;
    const int64_t d = e.requiredInt("shard_dim");
    if (d < 0 || d >= int64_t(shape.size())) {
      error = "shard_dim " + std::to_string(d) + " is not a dimension of the " + std::to_string(shape.size()) +
              "-d operand";
      return {};
    }
    localChunk = 1;
    for (size_t i = size_t(d); i < shape.size(); ++i)
      localChunk *= uint64_t(shape[i]);
    fullChunk = localChunk * uint64_t(e.tensorParallel());
  }
  const bool residual = step.op == "dropout_add";
  std::string seed = e.runtime("dropout_seed", "unsigned long long");
  std::string training = e.runtime("training", "int");
  std::string stream = e.attribute("rng_stream", "unsigned long long");
  std::string offset = "0ull";
  if (localChunk > 0)
    offset = "(unsigned long long)" + e.runtime("tp_rank", "int") + " * " + std::to_string(localChunk) + "ull";
  std::vector<std::string> types = {e.inType(0), e.outType(0)}, args = {e.in(0), e.out(0)};
  if (residual) {
    types.insert(types.begin() + 1, e.inType(1));
    args.insert(args.begin() + 1, e.in(1));
  }
  types.insert(types.end(), {num(n), std::to_string(keepThreshold(rate)) + "ull", std::to_string(localChunk) + "ull",
                             std::to_string(fullChunk) + "ull"});
  args.insert(args.end(), {literal(keepScale(rate)), seed, stream, training, offset});
  e.body(deviceCall(residual ? "dropoutAdd" : "dropout", types, args));
  e.launch = gridStride((n + 3) / 4);
  return single(e, error);
}

} // namespace

std::vector<CudaKernel> emitActivation(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const std::string &op = step.op;
  if (op == "dropout" || op == "dropout_add")
    return emitDropout(plan, step, error);
  KernelEmitter e(plan, step, "", {"Activations.cuh"});
  if (op == "gelu" || op == "gelu_grad") {
    const std::string approximation = e.attrString("approximation", "tanh");
    const std::string tanh = approximation == "none" ? "false" : "true";
    const int64_t n = e.outBuffer(0).numElements();
    if (op == "gelu")
      e.body(deviceCall("geluForward", {e.inType(0), e.outType(0), num(n), tanh}, {e.in(0), e.out(0)}));
    else
      e.body(deviceCall("geluBackward", {e.inType(0), e.inType(1), e.outType(0), num(n), tanh},
                        {e.in(0), e.in(1), e.out(0)}));
    e.launch = gridStride(n);
  } else { // swiglu [rows, 2F] -> [rows, F] and its gradient
    const bool forward = op == "swiglu";
    const plan::Buffer &half = forward ? e.outBuffer(0) : e.inBuffer(0);
    const int64_t ffn = half.shape.empty() ? 0 : half.shape.back();
    const int64_t rows = ffn > 0 ? half.numElements() / ffn : 0;
    if (forward)
      e.body(deviceCall("swigluForward", {e.inType(0), e.outType(0), num(rows), num(ffn)}, {e.in(0), e.out(0)}));
    else
      e.body(deviceCall("swigluBackward", {e.inType(0), e.inType(1), e.outType(0), num(rows), num(ffn)},
                        {e.in(0), e.in(1), e.out(0)}));
    e.launch = gridStride(rows * ffn);
  }
  return single(e, error);
}

} // namespace megatron::codegen::detail
