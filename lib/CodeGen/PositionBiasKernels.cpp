//===- PositionBiasKernels.cpp - relative_position_bias, forward and backward --===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

#include "megatron/Model/RelativePositionBucket.h"

namespace megatron::codegen::detail {

std::vector<CudaKernel> emitPositionBias(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const bool forward = step.op == "relative_position_bias";
  KernelEmitter e(plan, step, "", {"PositionBias.cuh"});
  // The bias is [heads, q, k]: the forward's output, the backward's input.
  const std::vector<int64_t> &bias = forward ? e.outBuffer(0).shape : e.inBuffer(0).shape;
  const int64_t buckets = e.requiredInt("num_buckets"), distance = e.requiredInt("max_distance");
  const bool bidirectional = e.flag("bidirectional");
  if (bias.size() != 3) {
    error = "the relative position bias must be [heads, query_seq, key_seq]";
    return {};
  }
  const int64_t heads = bias[0], sq = bias[1], sk = bias[2];
  // The buckets of every distance k − q, from the CPU's function: both backends bucket alike by construction.
  std::string table = "__device__ const int mt_buckets[" + num(sq + sk - 1) + "] = {";
  for (int64_t d = 0; d < sq + sk - 1; ++d)
    table += (d ? "," : "") + std::to_string(t5RelativePositionBucket(d - (sq - 1), bidirectional, buckets, distance));
  e.globals(table + "};");
  if (forward) {
    e.body(deviceCall("relativePositionBiasForward", {e.inType(0), e.outType(0), num(heads), num(sq), num(sk)},
                      {"mt_buckets", e.in(0), e.out(0)}));
    e.launch = gridStride(heads * sq * sk);
  } else {
    e.body(deviceCall("relativePositionBiasBackward",
                      {e.inType(0), e.outType(0), num(heads), num(sq), num(sk), num(buckets)},
                      {"mt_buckets", e.in(0), e.out(0)}));
    e.launch = gridStride(buckets * heads);
  }
  return single(e, error);
}

} // namespace megatron::codegen::detail
