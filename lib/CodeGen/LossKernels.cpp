//===- LossKernels.cpp - cross_entropy and cross_entropy_grad ------------------===//
//
// The forward is two kernels (the rows' log-sum-exp, then the masked mean in one block); the backward one.
// A vocabulary-parallel forward is three kernels (row maxima, partial sums, the mean) that the device engine joins
// with two all-reduces over the tensor-parallel group (docs/cpu-kernels.md); they pass their rows' statistics
// through the engine's workspace (the run-time argument "workspace"). Its backward needs no collective and is one
// kernel, with the rank's column offset as a run-time argument.
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

  if (vocabParallel) {
    // The statistics' type: the logits' arithmetic type.
    const std::string stats = plan.buffers[step.inputs.at(0)].dtype == plan::DType::F64 ? "double" : "float";
    KernelEmitter max(plan, step, "row_max", {"Loss.cuh"});
    {
      std::string z = max.in(0), workspace = max.runtime("workspace", stats + " *");
      max.body(deviceCall("crossEntropyRowMax", {max.inType(0), v, b}, {z, workspace}));
      max.launch = perRow(rows, block);
    }
    KernelEmitter sums(plan, step, "partial_sums", {"Loss.cuh"});
    {
      std::string z = sums.in(0), labels = sums.in(1), mask = maskArg(sums);
      std::string workspace = sums.runtime("workspace", stats + " *");
      std::string status = sums.runtime("index_status", "unsigned long long *");
      std::string offset = "(long long)" + sums.runtime("tp_rank", "int") + " * " + v;
      sums.body(deviceCall("crossEntropyPartialSums", {sums.inType(0), maskType(sums), r, v, num(limit), b, m},
                           {z, labels, mask, workspace, status, offset}));
      sums.launch = perRow(rows, block);
    }
    KernelEmitter finish(plan, step, "finish", {"Loss.cuh"});
    {
      const int meanBlock = rowBlock(rows, 1024);
      std::string workspace = finish.runtime("workspace", "const " + stats + " *"), mask = maskArg(finish);
      std::string lse = finish.out(1), loss = finish.out(0);
      finish.body(deviceCall("crossEntropyFinish",
                             {stats, maskType(finish), finish.outType(1), finish.outType(0), r, num(meanBlock), m},
                             {workspace, mask, lse, loss}));
      finish.launch = perRow(1, meanBlock);
    }
    return several({&max, &sums, &finish}, error);
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

bool joinedByCollectives(const plan::Step &step) {
  auto it = step.attrs.find("vocab_parallel");
  const bool *vocabParallel = it == step.attrs.end() ? nullptr : std::get_if<bool>(&it->second);
  return step.op == "cross_entropy" && vocabParallel && *vocabParallel;
}

} // namespace megatron::codegen::detail
