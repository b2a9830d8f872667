//===- LossKernels.cpp - cross_entropy and cross_entropy_grad ------------------===//
//
// The forward is two kernels (the rows' log-sum-exp, then the masked mean in one block); the backward one.
// A vocabulary-parallel forward needs all-reduces between its phases (docs/cpu-kernels.md), which await NCCL; its
// backward needs none and is generated, with the rank's column offset as a run-time argument.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

namespace megatron::codegen::detail {

namespace {

/// Blocks for a row of the vocabulary: up to 512 threads, each striding over the row.
int vocabBlock(int64_t vocab) { return rowBlock(vocab / 8, 512); }

} // namespace

std::vector<CudaKernel> emitLoss(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const bool forward = step.op == "cross_entropy";
  const bool vocabParallel = KernelEmitter(plan, step, "", {}).flag("vocab_parallel");
  if (forward && vocabParallel) {
    error = "the vocabulary-parallel cross-entropy forward all-reduces between its phases (NCCL)";
    return {};
  }
  // Forward: logits, labels, [mask] -> loss, lse. Backward: dloss, logits, labels, [mask], lse -> dlogits.
  const size_t logitsAt = forward ? 0 : 1;
  const bool masked = step.inputs.size() > (forward ? 2u : 4u);
  const plan::Buffer &logits = plan.buffers[step.inputs.at(logitsAt)];
  const int64_t vocab = logits.shape.empty() ? 0 : logits.shape.back();
  const int64_t rows = vocab > 0 ? logits.numElements() / vocab : 0;
  const int64_t limit = vocab * (vocabParallel ? plan.parallel.tensor : 1);
  const int block = vocabBlock(vocab);

  auto maskArg = [&](KernelEmitter &e) { return masked ? e.in(logitsAt + 2) : std::string("(const float *)0"); };
  auto maskType = [&](KernelEmitter &e) { return masked ? e.inType(logitsAt + 2) : std::string("float"); };
  const std::string v = num(vocab), r = num(rows), b = num(block), m = masked ? "true" : "false";

  if (!forward) {
    KernelEmitter e(plan, step, "", {"Loss.cuh"});
    std::string dloss = e.in(0), z = e.in(1), labels = e.in(2), mask = maskArg(e), lse = e.in(masked ? 4 : 3);
    std::string dz = e.out(0), status = e.runtime("index_status", "unsigned long long *");
    std::string offset = vocabParallel ? "(long long)" + e.runtime("tp_rank", "int") + " * " + v : "0";
    e.body(deviceCall("crossEntropyBackward",
                      {e.inType(0), e.inType(1), maskType(e), e.inType(masked ? 4 : 3), e.outType(0), r, v,
                       num(limit), b, m},
                      {dloss, z, labels, mask, lse, dz, status, offset}));
    e.launch = perRow(rows, block);
    return single(e, error);
  }

  KernelEmitter lse(plan, step, "row_lse", {"Loss.cuh"});
  {
    std::string z = lse.in(0), labels = lse.in(1), mask = maskArg(lse), out = lse.out(1);
    std::string status = lse.runtime("index_status", "unsigned long long *");
    lse.body(deviceCall("crossEntropyRowLse", {lse.inType(0), maskType(lse), lse.outType(1), v, num(limit), b, m},
                        {z, labels, mask, out, status}));
    lse.launch = perRow(rows, block);
  }
  KernelEmitter mean(plan, step, "mean", {"Loss.cuh"});
  {
    const int meanBlock = rowBlock(rows, 1024);
    std::string z = mean.in(0), labels = mean.in(1), mask = maskArg(mean), rowLse = mean.out(1),
                loss = mean.out(0);
    mean.body(deviceCall("crossEntropyMean",
                         {mean.inType(0), maskType(mean), mean.outType(1), mean.outType(0), r, v, num(meanBlock), m},
                         {z, labels, mask, rowLse, loss}));
    mean.launch = perRow(1, meanBlock);
  }
  std::vector<CudaKernel> kernels = single(lse, error);
  if (error.empty()) {
    std::vector<CudaKernel> second = single(mean, error);
    if (error.empty()) {
      kernels.push_back(std::move(second.front()));
      return kernels;
    }
  }
  return {};
}

} // namespace megatron::codegen::detail
