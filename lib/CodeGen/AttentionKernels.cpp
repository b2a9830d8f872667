//===- AttentionKernels.cpp - attention and attention_grad -------------------===//
//
// The forward is one kernel; the backward two, dq (thread per query row) and dk/dv (thread per key row), so that
// every output element has one writer and the sums run in a fixed order (no atomics: runs are reproducible). The
// dq kernel leaves each query row's statistics in the step's workspace output for the dk/dv kernel.
// lib/CodeGen/cuda/Attention.cuh has the device code and its limits.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

#include <algorithm>

namespace megatron::codegen::detail {

namespace {

constexpr int kRowsPerBlock = 64; // query (or key) rows per block: one thread each

/// Key or query rows staged in shared memory per tile: two [tile, headDim] float tiles within 32 KiB.
int stagedRows(int64_t headDim) {
  int tile = 64;
  while (tile > 1 && 2 * tile * headDim * 4 > 32 * 1024)
    tile /= 2;
  return tile;
}

} // namespace

std::vector<CudaKernel> emitAttention(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  const bool forward = step.op == "attention";
  const size_t first = forward ? 0 : 2; // attention_grad's inputs start with dout and out
  auto maskAttr = step.attrs.find("mask_type");
  const std::string *maskName = maskAttr == step.attrs.end() ? nullptr : std::get_if<std::string>(&maskAttr->second);
  if (!maskName) {
    error = "the step lacks its 'mask_type' attribute";
    return {};
  }
  // Attention.cuh's AttentionMaskKind.
  const int mask = *maskName == "causal" ? 0 : *maskName == "padding" ? 2 : 1;
  const size_t afterMask = first + 3 + (mask == 2 ? 1 : 0);
  // After the optional padding mask: [bias] in the forward; [bias,] lse in the backward.
  const bool hasBias = step.inputs.size() > afterMask + (forward ? 0 : 1);
  const plan::Buffer &qBuffer = plan.buffers[step.inputs.at(first)];
  const plan::Buffer &kBuffer = plan.buffers[step.inputs.at(first + 1)];
  if (qBuffer.shape.size() != 4 || kBuffer.shape.size() != 4) {
    error = "attention's q and k must be [batch, seq, heads, head_dim]";
    return {};
  }
  const int64_t batch = qBuffer.shape[0], sq = qBuffer.shape[1], heads = qBuffer.shape[2], dim = qBuffer.shape[3];
  const int64_t sk = kBuffer.shape[1], groups = kBuffer.shape[2];
  const int tile = stagedRows(dim);

  // One emitter per kernel; the arguments every kernel shares come in the same order.
  auto common = [&](KernelEmitter &e, std::vector<std::string> &args, std::vector<std::string> &templates) {
    const double rate = e.attrDouble("dropout", 0.0);
    // head_shard: this rank's heads are [rank·H, (rank+1)·H) of H·tp; their probabilities are one run of the
    // full tensor's per batch (cpu::AttentionConfig::dropout).
    const uint64_t localChunk = e.flag("head_shard") ? uint64_t(heads * sq * sk) : 0;
    const uint64_t fullChunk = localChunk * uint64_t(e.tensorParallel());
    const double scale = e.requiredDouble("softmax_scale");
    templates.insert(templates.end(), {num(batch), num(sq), num(sk), num(heads), num(groups), num(dim), num(mask)});
    std::string offset = "0ull";
    std::vector<std::string> tail = {literal(scale), literal(keepScale(rate)), e.runtime("dropout_seed", "unsigned long long"),
                                     e.attribute("rng_stream", "unsigned long long"), e.runtime("training", "int")};
    if (localChunk > 0)
      offset = "(unsigned long long)" + e.runtime("tp_rank", "int") + " * " + std::to_string(localChunk) + "ull";
    tail.push_back(offset);
    args.insert(args.end(), tail.begin(), tail.end());
    return std::vector<std::string>{std::to_string(keepThreshold(rate)) + "ull", std::to_string(localChunk) + "ull",
                                    std::to_string(fullChunk) + "ull"};
  };
  auto grid = [&](int64_t rows, int64_t middle) {
    LaunchConfig launch;
    launch.grid[0] = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    launch.grid[1] = middle;
    launch.grid[2] = batch;
    launch.block[0] = kRowsPerBlock;
    return launch;
  };
  const std::vector<std::string> files = {"Philox.cuh", "Attention.cuh"};

  // 16-bit q, k, v (and dout) of one type with a head dimension that is a multiple of 16 and no score bias run on
  // tensor cores (AttentionTensorCore.cuh), the rest on CUDA cores.
  const plan::DType qType = qBuffer.dtype;
  bool tensorCore = (qType == plan::DType::BF16 || qType == plan::DType::F16) && dim % 16 == 0 && !hasBias;
  for (size_t i = 0; i < first + 3; ++i)
    if (i != 1 || forward) // attention_grad's `out` may be of any type: the tensor-core kernels do not read it
      tensorCore = tensorCore && plan.buffers[step.inputs.at(i)].dtype == qType;
  std::vector<std::string> kernelFiles = files;
  if (tensorCore)
    kernelFiles.insert(kernelFiles.end(), {"Mma.cuh", "AttentionTensorCore.cuh"});

  if (forward) {
    // Inputs q, k, v, [padMask], [bias]; outputs out, lse.
    KernelEmitter e(plan, step, tensorCore ? "tensor_core" : "", kernelFiles);
    std::vector<std::string> args = {e.in(0), e.in(1), e.in(2), mask == 2 ? e.in(3) : "(const int *)0"};
    std::vector<std::string> templates;
    if (tensorCore) {
      args.insert(args.end(), {e.out(0), e.out(1)});
      templates = {e.inType(0), e.outType(0), e.outType(1)};
    } else {
      args.insert(args.end(), {hasBias ? e.in(afterMask) : "(const float *)0", e.out(0), e.out(1)});
      templates = {e.inType(0), e.inType(1), e.inType(2), hasBias ? e.inType(afterMask) : "float", e.outType(0),
                   e.outType(1)};
    }
    std::vector<std::string> dropout = common(e, args, templates);
    if (!tensorCore)
      templates.insert(templates.end(), {num(kRowsPerBlock), num(tile)});
    templates.insert(templates.end(), dropout.begin(), dropout.end());
    e.body(deviceCall(tensorCore ? "attentionForwardTensorCore" : "attentionForward", templates, args));
    e.launch = grid(sq, heads);
    if (tensorCore)
      e.launch.block[0] = 128; // 4 warps of 16 query rows: kRowsPerBlock rows per block
    return single(e, error);
  }

  // Inputs dout, out, q, k, v, [padMask], [bias], lse; outputs dq, dk, dv, [dbias] and the rows' statistics (a
  // workspace output the plan provides, the last). The kernels run in this order: dq leaves the statistics that
  // dk/dv and dbias read.
  const size_t bias = afterMask, lse = afterMask + (hasBias ? 1 : 0);
  const size_t rows = hasBias ? 4 : 3;
  if (step.outputs.size() != rows + 1) {
    error = "attention_grad needs the plan's row-statistics workspace as its last output (recompile the plan)";
    return {};
  }
  std::vector<CudaKernel> kernels;
  for (int part = 0; part < (hasBias ? 3 : 2); ++part) {
    const std::string role = part == 0 ? "dq" : part == 1 ? "dkdv" : "dbias";
    KernelEmitter e(plan, step, tensorCore ? role + "_tensor_core" : role, kernelFiles);
    std::vector<std::string> args, templates;
    // dout, out (which dbias does not read), q, k, v; then the mask, the bias, lse. The tensor-core kernels take
    // one type T for dout, q, k and v.
    for (size_t i : part == 2 ? std::vector<size_t>{0, 2, 3, 4} : std::vector<size_t>{0, 1, 2, 3, 4}) {
      args.push_back(e.in(i));
      if (!tensorCore || i < 2)
        templates.push_back(e.inType(i));
    }
    args.push_back(mask == 2 ? e.in(5) : "(const int *)0");
    args.push_back(hasBias ? e.in(bias) : "(const float *)0");
    templates.push_back(hasBias ? e.inType(bias) : "float");
    args.push_back(e.in(lse));
    templates.push_back(e.inType(lse));
    if (part == 0) {
      args.insert(args.end(), {e.out(0), e.out(rows)});
      templates.insert(templates.end(), {e.outType(0), e.outType(rows)});
    } else if (part == 1) {
      args.insert(args.end(), {e.out(1), e.out(2), e.out(rows)});
      templates.insert(templates.end(), {e.outType(1), e.outType(2), e.outType(rows)});
    } else {
      args.insert(args.end(), {e.out(3), e.out(rows)});
      templates.insert(templates.end(), {e.outType(3), e.outType(rows)});
    }
    std::vector<std::string> dropout = common(e, args, templates);
    if (part < 2 && !tensorCore)
      templates.insert(templates.end(), {num(kRowsPerBlock), num(part == 0 ? tile : std::min(tile, kRowsPerBlock))});
    templates.insert(templates.end(), dropout.begin(), dropout.end());
    std::string function = part == 0 ? "attentionBackwardQuery" : part == 1 ? "attentionBackwardKeyValue"
                                                                             : "attentionBackwardBias";
    if (tensorCore)
      function += "TensorCore";
    e.body(deviceCall(function, templates, args));
    e.launch = part == 0 ? grid(sq, heads) : part == 1 ? grid(sk, groups) : gridStride(heads * sq * sk);
    if (tensorCore)
      e.launch.block[0] = 128; // 4 warps of 16 rows: kRowsPerBlock rows per block
    std::vector<CudaKernel> one = single(e, error);
    if (!error.empty())
      return {};
    kernels.push_back(std::move(one.front()));
  }
  return kernels;
}

} // namespace megatron::codegen::detail
