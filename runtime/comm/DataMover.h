//===- DataMover.h - How a thread world's ranks reach each other's buffers -*- C++ -*-===//
//
// The thread communicator (ThreadCommunicator.h) is a rendezvous of ranks that can all address each other's
// buffers: its groups, barriers, call matching, timeouts and abort do not depend on where the buffers live. What
// does is behind this interface, one object per rank: host memcpy and reductions (hostDataMover(), the CPU
// engine's communicator) or the copies and kernels of one device's stream (runtime/device's same-device
// communicator, where every rank's buffers are device pointers of that device). Each rank's mover is used by that
// rank's thread only.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_DATAMOVER_H
#define MEGATRON_RUNTIME_COMM_DATAMOVER_H

#include "runtime/comm/Communicator.h"

#include <cstddef>
#include <memory>
#include <string>

namespace megatron::comm {

class DataMover {
public:
  virtual ~DataMover();

  /// For messages: "host memory", "the host CUDA simulator".
  virtual std::string describe() const = 0;

  /// Called before this rank shows its buffers to its peers (a collective's entry, a send or a receive): the work
  /// this rank issued on them earlier must be complete. A device stream synchronizes; the host has nothing to do.
  virtual std::string publish() = 0;
  /// Called after this rank's share of a collective (or a point-to-point copy): the copies and reductions it
  /// issued must be complete before the peers go on, since they may then reuse or free the buffers.
  virtual std::string complete() = 0;

  /// Copies `bytes` between buffers of any ranks (they may overlap only when equal).
  virtual std::string copy(void *to, const void *from, std::size_t bytes) = 0;
  /// dst[d][i] = src[0][i] op ... op src[n-1][i] in rank order for each of the numDst destinations (a destination
  /// may be one of the sources); bitwise the same on every rank that calls it with the same sources.
  virtual std::string reduce(DType type, ReduceOp op, const void *const *src, int n, void *const *dst, int numDst,
                             std::int64_t len) = 0;
  /// Whether reduce() takes `type`. The host reduces f32, f64, i32 and i64 (isReducible); a device also bf16 and
  /// f16, summed in f32 in rank order and rounded once.
  virtual bool reduces(DType type) const = 0;
  /// A copy of `bytes` of `data` that outlives the call (a message sent before its receive was posted), in memory
  /// this mover owns; freed when the last reference goes, which may be on the receiving rank's thread.
  virtual std::string stage(const void *data, std::size_t bytes, std::shared_ptr<void> &copy) = 0;
};

/// Host memory: memcpy and comm's reduction in rank order. Shared by every rank (it keeps no state).
std::shared_ptr<DataMover> hostDataMover();

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_DATAMOVER_H
