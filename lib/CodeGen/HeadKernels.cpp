//===- HeadKernels.cpp - rope and the fused QKV / KV layouts --------------------===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

namespace megatron::codegen::detail {

namespace {

std::vector<CudaKernel> emitRope(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  KernelEmitter e(plan, step, "", {"Rope.cuh"});
  const std::vector<int64_t> &x = e.inBuffer(0).shape; // [batch, seq, heads, head_dim]
  const int64_t rotary = e.requiredInt("rotary_dim");
  const double base = e.requiredDouble("base");
  if (x.size() != 4 || rotary % 2 != 0 || rotary > x[3]) {
    error = "rope needs a [batch, seq, heads, head_dim] operand and an even rotary_dim <= head_dim";
    return {};
  }
  const std::string direction = step.op == "rope" ? "1" : "-1";
  e.body(deviceCall("rope",
                    {e.inType(0), e.outType(0), num(x[0]), num(x[1]), num(x[2]), num(x[3]), num(rotary), direction},
                    {e.in(0), e.out(0), literal(base)}));
  e.launch = gridStride(x[0] * x[1] * x[2] * x[3]);
  return single(e, error);
}

// split_qkv (fused -> q, k, v), merge_qkv (its backward), split_kv and merge_kv (no query heads).
std::vector<CudaKernel> emitShuffle(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  KernelEmitter e(plan, step, "", {"Heads.cuh"});
  const bool split = step.op == "split_qkv" || step.op == "split_kv";
  const bool withQuery = step.op == "split_qkv" || step.op == "merge_qkv";
  // The separate heads: q [b, s, heads, d] (with queries) and k [b, s, groups, d].
  const plan::Buffer &first = split ? e.outBuffer(0) : e.inBuffer(0);
  const plan::Buffer &key = withQuery ? (split ? e.outBuffer(1) : e.inBuffer(1)) : first;
  if (first.shape.size() != 4 || key.shape.size() != 4) {
    error = "the heads of " + step.op + " must be [batch, seq, heads, head_dim]";
    return {};
  }
  const int64_t tokens = key.shape[0] * key.shape[1], groups = key.shape[2], d = key.shape[3];
  const int64_t heads = withQuery ? first.shape[2] : 0;
  if (withQuery && (groups == 0 || heads % groups != 0)) {
    error = std::to_string(heads) + " query heads do not split into " + std::to_string(groups) + " groups";
    return {};
  }
  const int64_t per = withQuery ? heads / groups : 0;
  const std::string fusedType = split ? e.inType(0) : e.outType(0);
  const std::string headType = cTypeOf(first.dtype);
  std::vector<std::string> templateArgs = {fusedType, headType,  num(tokens), num(heads), num(groups),
                                           num(per),  num(d), split ? "true" : "false"};
  // shuffleHeads(fused, q, k, v) copies in both directions, so its pointers are not const; without queries q is
  // null.
  const std::string headPointer = "(" + headType + " *)";
  std::string fused, q = headPointer + "0", k, v;
  if (split) {
    fused = "(" + fusedType + " *)" + e.in(0);
    size_t o = 0;
    if (withQuery)
      q = e.out(o++);
    k = e.out(o++);
    v = e.out(o++);
  } else {
    size_t i = 0;
    if (withQuery)
      q = headPointer + e.in(i++);
    k = headPointer + e.in(i++);
    v = headPointer + e.in(i++);
    fused = e.out(0);
  }
  std::vector<std::string> args = {fused, q, k, v};
  e.body(deviceCall("shuffleHeads", templateArgs, args));
  e.launch = gridStride(tokens * groups * (per + 2) * d);
  return single(e, error);
}

} // namespace

std::vector<CudaKernel> emitHeads(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  if (step.op == "rope" || step.op == "rope_grad")
    return emitRope(plan, step, error);
  return emitShuffle(plan, step, error);
}

} // namespace megatron::codegen::detail
