//===- NormKernels.cpp - layer_norm and rms_norm, forward and backward -------===//
//
// Forward: one kernel, a block per row. Backward: two kernels, the input gradient (a block per row) and the
// parameter gradients (a thread per column), because the first reduces along rows and the second across them.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

namespace megatron::codegen::detail {

std::vector<CudaKernel> emitNorm(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const bool layer = step.op == "layer_norm" || step.op == "layer_norm_grad";
  const bool forward = step.op == "layer_norm" || step.op == "rms_norm";
  const plan::Buffer &x = plan.buffers[step.inputs.at(forward ? 0 : 1)];
  const int64_t hidden = x.shape.empty() ? 0 : x.shape.back();
  const int64_t rows = hidden > 0 ? x.numElements() / hidden : 0;
  const int block = rowBlock(hidden);
  const std::string h = num(hidden), b = num(block), r = num(rows);

  if (forward) {
    KernelEmitter e(plan, step, "", {"Norms.cuh"});
    const std::string eps = literal(e.requiredDouble("epsilon"));
    if (layer)
      e.body(deviceCall("layerNormForward",
                        {e.inType(0), e.inType(1), e.inType(2), e.outType(0), e.outType(1), h, b},
                        {eps, e.in(0), e.in(1), e.in(2), e.out(0), e.out(1), e.out(2)}));
    else
      e.body(deviceCall("rmsNormForward", {e.inType(0), e.inType(1), e.outType(0), e.outType(1), h, b},
                        {eps, e.in(0), e.in(1), e.out(0), e.out(1)}));
    e.launch = perRow(rows, block);
    return single(e, error);
  }

  // Inputs: dy, x, w, [mean,] rstd; outputs: dx, dw, [db].
  KernelEmitter dx(plan, step, "dx", {"Norms.cuh"});
  KernelEmitter params(plan, step, "dparams", {"Norms.cuh"});
  if (layer) {
    dx.body(deviceCall("layerNormBackwardInput",
                       {dx.inType(0), dx.inType(1), dx.inType(2), dx.inType(3), dx.outType(0), h, b},
                       {dx.in(0), dx.in(1), dx.in(2), dx.in(3), dx.in(4), dx.out(0)}));
    params.body(deviceCall("layerNormBackwardParams",
                           {params.inType(0), params.inType(1), params.inType(3), params.outType(1),
                            params.outType(2), r, h},
                           {params.in(0), params.in(1), params.in(3), params.in(4), params.out(1), params.out(2)}));
  } else {
    dx.body(deviceCall("rmsNormBackwardInput",
                       {dx.inType(0), dx.inType(1), dx.inType(2), dx.inType(3), dx.outType(0), h, b},
                       {dx.in(0), dx.in(1), dx.in(2), dx.in(3), dx.out(0)}));
    params.body(deviceCall("rmsNormBackwardParams", {params.inType(0), params.inType(1), params.inType(3),
                                                     params.outType(1), r, h},
                           {params.in(0), params.in(1), params.in(3), params.out(1)}));
  }
  dx.launch = perRow(rows, block);
  params.launch = perColumnTile(hidden);
  return several({&dx, &params}, error);
}

} // namespace megatron::codegen::detail
