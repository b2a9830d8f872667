//===- Communicator.cpp - Call descriptions and the default *Dim collectives ----===//

#include "Communicator.h"

#include <cstring>
#include <limits>
#include <vector>

namespace megatron::comm {

const char *toString(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : "max"; }

bool isReducible(DType type) {
  return type == DType::F32 || type == DType::F64 || type == DType::I32 || type == DType::I64;
}

const char *toString(CommOp op) {
  switch (op) {
  case CommOp::AllReduce:
    return "all_reduce";
  case CommOp::AllGather:
    return "all_gather";
  case CommOp::ReduceScatter:
    return "reduce_scatter";
  case CommOp::Broadcast:
    return "broadcast";
  case CommOp::Send:
    return "send";
  case CommOp::Recv:
    return "recv";
  case CommOp::AllGatherDim:
    return "all_gather_dim";
  case CommOp::ReduceScatterDim:
    return "reduce_scatter_dim";
  case CommOp::Split:
    return "split";
  }
  return "?";
}

static bool reduces(CommOp op) {
  return op == CommOp::AllReduce || op == CommOp::ReduceScatter || op == CommOp::ReduceScatterDim;
}

bool CallInfo::sameAs(const CallInfo &other) const {
  if (op != other.op)
    return false;
  if (op == CommOp::Split) // colors and keys differ between ranks by design
    return true;
  return type == other.type && count == other.count && outer == other.outer &&
         (!reduces(op) || reduce == other.reduce) && (op != CommOp::Broadcast || peer == other.peer);
}

std::string CallInfo::describe(const std::string &group) const {
  std::string text = toString(op);
  if (op == CommOp::Send || op == CommOp::Recv) {
    text += (op == CommOp::Send ? " to rank " : " from rank ") + std::to_string(peer);
    if (tag != 0)
      text += " tag " + std::to_string(tag);
  }
  text += " (group \"" + group + "\"";
  if (op != CommOp::Split) {
    text += ", ";
    if (op == CommOp::AllGatherDim || op == CommOp::ReduceScatterDim)
      text += std::to_string(outer) + " x ";
    text += std::to_string(count) + " x " + plan::toString(type);
    if (op == CommOp::AllGather || op == CommOp::ReduceScatter || op == CommOp::AllGatherDim ||
        op == CommOp::ReduceScatterDim)
      text += " per rank";
    if (reduces(op))
      text += std::string(", ") + toString(reduce);
    if (op == CommOp::Broadcast)
      text += ", root " + std::to_string(peer);
  }
  return text + ")";
}

std::string CallInfo::validate(int groupSize, const void *send, const void *recv, bool sixteenBitReductions) const {
  if (op == CommOp::Split)
    return "";
  if (count < 0 || outer < 0)
    return "negative element count";
  int64_t bytes = plan::bytesOf(type);
  if (bytes == 0)
    return "unknown element type";
  const bool sixteenBit = type == DType::BF16 || type == DType::F16;
  if (reduces(op) && !isReducible(type) && !(sixteenBit && sixteenBitReductions))
    return std::string("reductions of ") + plan::toString(type) + " are not supported (f32, f64, i32, i64" +
           (sixteenBitReductions ? ", bf16, f16" : "") + " are)";
  if ((op == CommOp::Broadcast || op == CommOp::Send || op == CommOp::Recv) && (peer < 0 || peer >= groupSize))
    return (op == CommOp::Broadcast ? "root " : "peer ") + std::to_string(peer) + " is not a rank of this group of " +
           std::to_string(groupSize);
  if ((op == CommOp::Send || op == CommOp::Recv) && (tag < 0 || tag > kMaxTag))
    return "tag " + std::to_string(tag) + " is outside 0.." + std::to_string(kMaxTag);
  // The largest buffer involved, in bytes, must fit in int64_t.
  int64_t limit = std::numeric_limits<int64_t>::max() / bytes / groupSize;
  if (outer != 0 && count > limit / outer)
    return "buffer size overflows";
  if (count * outer == 0)
    return "";
  bool hasSend = op == CommOp::AllGather || op == CommOp::ReduceScatter || op == CommOp::AllGatherDim ||
                 op == CommOp::ReduceScatterDim || op == CommOp::Send;
  if ((hasSend && !send) || !recv)
    return "null buffer";
  return "";
}

Communicator::~Communicator() = default;

// The defaults run the contiguous collective on [size][outer][chunk] and permute locally, as NCCL must: its
// collectives only know contiguous per-rank blocks.
std::string Communicator::allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type) {
  CallInfo call{CommOp::AllGatherDim, type, ReduceOp::Sum, chunk, outer, -1};
  if (std::string problem = call.validate(size(), send, recv); !problem.empty()) {
    std::string error = call.describe(name()) + ": " + problem;
    abort(error);
    return error;
  }
  if (outer == 1)
    return allGather(send, recv, chunk, type);
  const int n = size();
  const int64_t chunkBytes = chunk * plan::bytesOf(type);
  std::vector<char> scratch(static_cast<size_t>(n * outer * chunkBytes)); // [size][outer][chunk]
  if (std::string error = allGather(send, scratch.data(), outer * chunk, type); !error.empty())
    return error;
  char *out = static_cast<char *>(recv);
  for (int64_t o = 0; chunkBytes > 0 && o < outer; ++o)
    for (int r = 0; r < n; ++r)
      std::memcpy(out + (o * n + r) * chunkBytes, scratch.data() + (r * outer + o) * chunkBytes, chunkBytes);
  return "";
}

std::string Communicator::reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                                           ReduceOp op) {
  CallInfo call{CommOp::ReduceScatterDim, type, op, chunk, outer, -1};
  if (std::string problem = call.validate(size(), send, recv); !problem.empty()) {
    std::string error = call.describe(name()) + ": " + problem;
    abort(error);
    return error;
  }
  if (outer == 1)
    return reduceScatter(send, recv, chunk, type, op);
  const int n = size();
  const int64_t chunkBytes = chunk * plan::bytesOf(type);
  std::vector<char> scratch(static_cast<size_t>(n * outer * chunkBytes)); // [size][outer][chunk]
  const char *in = static_cast<const char *>(send);
  for (int64_t o = 0; chunkBytes > 0 && o < outer; ++o)
    for (int r = 0; r < n; ++r)
      std::memcpy(scratch.data() + (r * outer + o) * chunkBytes, in + (o * n + r) * chunkBytes, chunkBytes);
  return reduceScatter(scratch.data(), recv, outer * chunk, type, op);
}

} // namespace megatron::comm
