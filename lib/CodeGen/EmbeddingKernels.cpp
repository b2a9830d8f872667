//===- EmbeddingKernels.cpp - token and learned position embeddings -----------===//
//
// A vocabulary-parallel table (vocab_shard) and a sequence-parallel chunk (sequence_shard) take the rank as a
// run-time argument, so every rank of a group runs the same kernels.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "StepEmitters.h"

#include <algorithm>

namespace megatron::codegen::detail {

namespace {

/// Table rows per block of embedding_grad: at most 64 row blocks, each scanning every token once.
constexpr int64_t kRowBlocks = 64;

std::vector<CudaKernel> emitTokenEmbedding(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  KernelEmitter e(plan, step, "", {"Embeddings.cuh"});
  const bool forward = step.op == "embedding";
  const plan::Buffer &table = forward ? e.inBuffer(1) : e.outBuffer(0);
  if (table.shape.size() != 2) {
    error = "the embedding table must be [vocab, hidden]";
    return {};
  }
  const int64_t tokens = e.inBuffer(0).numElements(), vocab = table.shape[0], hidden = table.shape[1];
  const bool sharded = e.flag("vocab_shard");
  const std::string tp = num(sharded ? e.tensorParallel() : 1);
  std::string ids = e.in(0), data = e.in(1), out = e.out(0); // data: the table, or dout
  std::string status = e.runtime("index_status", "unsigned long long *");
  std::string rank = sharded ? e.runtime("tp_rank", "int") : "0";
  if (forward) {
    e.body(deviceCall("embeddingForward", {e.inType(1), e.outType(0), num(vocab), num(hidden), tp},
                      {ids, data, out, status, rank}));
    e.launch = perRow(tokens, rowBlock(hidden, 256));
  } else {
    const int64_t rowBlocks = std::clamp<int64_t>(vocab, 1, kRowBlocks);
    const int64_t rowsPerBlock = (vocab + rowBlocks - 1) / rowBlocks;
    e.body(deviceCall("embeddingBackward",
                      {e.inType(1), e.outType(0), num(tokens), num(vocab), num(hidden), tp, num(rowsPerBlock)},
                      {ids, data, out, status, rank}));
    e.launch = perColumn(hidden);
    e.launch.grid[1] = (vocab + rowsPerBlock - 1) / rowsPerBlock;
  }
  return single(e, error);
}

std::vector<CudaKernel> emitPositionEmbedding(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  KernelEmitter e(plan, step, "", {"Embeddings.cuh"});
  const bool forward = step.op == "add_position_embedding";
  const std::vector<int64_t> &x = e.inBuffer(0).shape; // [batch, seq, hidden] (dout in the backward)
  const plan::Buffer &table = forward ? e.inBuffer(1) : e.outBuffer(0);
  if (x.size() != 3 || table.shape.size() != 2) {
    error = "position embeddings need a [batch, seq, hidden] operand and a [positions, hidden] table";
    return {};
  }
  const bool sharded = e.flag("sequence_shard");
  const int64_t positions = table.shape[0], chunks = sharded ? e.tensorParallel() : 1;
  if (x[1] * chunks > positions) {
    error = "positions [0, " + std::to_string(x[1] * chunks) + ") are outside the table's " +
            std::to_string(positions) + " rows";
    return {};
  }
  std::string in = e.in(0), data = forward ? e.in(1) : std::string(), out = e.out(0);
  std::string offset = sharded ? "(long long)" + e.runtime("tp_rank", "int") + " * " + num(x[1]) : "0";
  if (forward)
    e.body(deviceCall("positionEmbeddingForward",
                      {e.inType(0), e.inType(1), e.outType(0), num(x[0]), num(x[1]), num(x[2])},
                      {in, data, out, offset}));
  else
    e.body(deviceCall("positionEmbeddingBackward", {e.inType(0), e.outType(0), num(x[0]), num(x[1]), num(x[2])},
                      {in, out, offset}));
  e.launch = gridStride(forward ? x[0] * x[1] * x[2] : x[1] * x[2]);
  return single(e, error);
}

} // namespace

std::vector<CudaKernel> emitEmbedding(const plan::Plan &plan, const plan::Step &step, std::string &error) {
  if (step.op == "embedding" || step.op == "embedding_grad")
    return emitTokenEmbedding(plan, step, error);
  return emitPositionEmbedding(plan, step, error);
}

} // namespace megatron::codegen::detail
