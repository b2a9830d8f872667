//===- PoolerKernels.cpp - pooler and pooler_grad ---------------------------===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

namespace megatron::codegen::detail {

std::vector<CudaKernel> emitPooler(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const bool forward = step.op == "pooler";
  // Forward inputs x, weight, bias; backward inputs dy, y, x, weight and outputs dx, dweight, dbias.
  const plan::Buffer &x = plan.buffers[size_t(step.inputs.at(forward ? 0 : 2))];
  const plan::Buffer &w = plan.buffers[size_t(step.inputs.at(forward ? 1 : 3))];
  if (x.shape.size() != 3 || w.shape.size() != 2) {
    error = "the pooler's x must be [batch, seq, hidden] and its weight [out, hidden]";
    return {};
  }
  const std::string batch = num(x.shape[0]), seq = num(x.shape[1]), hidden = num(x.shape[2]), out = num(w.shape[0]);
  if (forward) {
    KernelEmitter e(plan, step, "", {"Pooler.cuh"});
    e.body(deviceCall("poolerForward", {e.inType(0), e.inType(1), e.inType(2), e.outType(0), batch, seq, hidden, out},
                      {e.in(0), e.in(1), e.in(2), e.out(0)}));
    e.launch = gridStride(x.shape[0] * w.shape[0]);
    return single(e, error);
  }
  KernelEmitter dx(plan, step, "dx", {"Pooler.cuh"});
  dx.body(deviceCall("poolerBackwardInput", {dx.inType(0), dx.inType(1), dx.inType(3), dx.outType(0), batch, seq,
                                             hidden, out},
                     {dx.in(0), dx.in(1), dx.in(3), dx.out(0)}));
  dx.launch = gridStride(x.numElements());
  KernelEmitter params(plan, step, "dparams", {"Pooler.cuh"});
  params.body(deviceCall("poolerBackwardParams", {params.inType(0), params.inType(1), params.inType(2),
                                                  params.outType(1), params.outType(2), batch, seq, hidden, out},
                         {params.in(0), params.in(1), params.in(2), params.out(1), params.out(2)}));
  params.launch = gridStride(w.numElements());
  return several({&dx, &params}, error);
}

} // namespace megatron::codegen::detail
