//===- Communicator.h - Collectives and point-to-point for one group of ranks -*- C++ -*-===//
//
// The runtime's view of a process group (tensor, sequence, pipeline or data parallel): the collectives the
// compiler's plans use, in place on raw buffers. One abstract interface, implemented today by threads sharing
// memory (ThreadCommunicator.h) and later by NCCL. docs/communicator.md is the manual.
//
// Contract shared by every implementation:
// - Errors are returned, never thrown: every call returns an empty string on success or one message that names
//   the call, its group and, where another rank is at fault, that rank.
// - Reductions combine the ranks' values in rank order 0, 1, ..., n-1 for every element, and every rank ends with
//   bitwise identical results (the thread implementation guarantees both; see the manual for NCCL).
// - Every wait is bounded by the world's timeout; after any failure (an error, abort(), a timeout, mismatched
//   calls) every rank of the world that waits, or later calls anything, returns an error naming the root cause.
// - A Communicator object is used by one thread (its rank's); only abort() may be called from any thread.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_COMMUNICATOR_H
#define MEGATRON_RUNTIME_COMM_COMMUNICATOR_H

#include "megatron/Plan/Plan.h"

#include <cstdint>
#include <memory>
#include <string>

namespace megatron::comm {

/// The plan's element types. Data movement (gathers, broadcast, send/recv) accepts every type; reductions accept
/// f32, f64, i32 and i64 and refuse bf16/f16 with an error (they would need a wider accumulator), except on a
/// device communicator that sums 16-bit buffers in f32 and rounds once (runtime/device/SameDeviceCommunicator.h).
using plan::DType;

enum class ReduceOp { Sum, Max };
const char *toString(ReduceOp op);

/// Whether reductions support `type`.
bool isReducible(DType type);

/// The operations, as named in messages ("all_reduce", ...).
enum class CommOp { AllReduce, AllGather, ReduceScatter, Broadcast, Send, Recv, AllGatherDim, ReduceScatterDim, Split };
const char *toString(CommOp op);

/// What one rank called: compared between ranks at a rendezvous and printed in error messages.
struct CallInfo {
  CommOp op = CommOp::AllReduce;
  DType type = DType::F32;
  ReduceOp reduce = ReduceOp::Sum; // reductions only
  int64_t count = 0;               // elements: the buffer, or per rank (gathers, scatters), or `chunk` (*Dim)
  int64_t outer = 1;               // *Dim only
  int peer = -1;                   // broadcast: the root; send/recv: the other rank
  int tag = 0;                     // send/recv only

  /// Whether two ranks' calls of one collective agree (point-to-point calls are matched by their channel, see
  /// Communicator::send; the tag is not compared here).
  bool sameAs(const CallInfo &other) const;
  /// E.g. `all_reduce (group "tp", 4096 x f32, sum)`, `recv from rank 2 tag 7 (group "pp", 10 x f32)`; the tag is
  /// left out when it is 0 (`send to rank 1 (group "pp", 10 x f32)`).
  std::string describe(const std::string &group) const;
  /// The arguments' problem, or "": a negative count, a reduction of bf16, a root or peer outside the group, a tag
  /// outside 0..kMaxTag, a byte size that overflows, a null buffer with elements.
  /// `sixteenBitReductions`: the implementation reduces bf16 and f16 too (the same-device communicator).
  std::string validate(int groupSize, const void *send, const void *recv, bool sixteenBitReductions = false) const;
};

/// The largest point-to-point tag every implementation accepts: tags are 0 <= tag <= kMaxTag (2^24 - 1). The MPI
/// implementation also needs tag <= MPI_TAG_UB (Open MPI's is 2^31 - 1; the standard only promises 32767) and
/// says so when the tag is larger.
inline constexpr int kMaxTag = (1 << 24) - 1;

class Communicator {
public:
  virtual ~Communicator();

  /// This rank's index in the group, 0 <= rank() < size().
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// The group's name ("world", "tp", "dp", ...), used in messages.
  virtual const std::string &name() const = 0;

  /// In place: every rank ends with the element-wise reduction of all ranks' `data`.
  virtual std::string allReduce(void *data, int64_t count, DType type, ReduceOp op) = 0;
  /// `recv` (size() * countPerRank elements) is the rank-major concatenation of every rank's `send`. In place when
  /// send == recv + rank() * countPerRank (elements).
  virtual std::string allGather(const void *send, void *recv, int64_t countPerRank, DType type) = 0;
  /// `send` holds size() * countPerRank elements; rank r receives the reduction of every rank's chunk r. In place
  /// when recv == send + rank() * countPerRank (elements).
  virtual std::string reduceScatter(const void *send, void *recv, int64_t countPerRank, DType type, ReduceOp op) = 0;
  /// Every rank's `data` becomes a copy of rank `root`'s.
  virtual std::string broadcast(void *data, int64_t count, DType type, int root) = 0;

  /// Point-to-point (pipeline parallelism). Every message has a tag, 0 <= tag <= kMaxTag, chosen by the caller
  /// (e.g. from the micro-batch, the model chunk and forward/backward), so that two ranks can exchange several
  /// streams of messages at once. send() copies the message out and returns without waiting for the receiver, so a
  /// rank may have several sends in flight (to one or several peers, with one or several tags) and a pair works
  /// whichever side arrives first. recv(peer, tag) waits for the oldest message from `peer` with tag `tag`:
  /// messages of one (sender, receiver, tag) arrive in the order they were sent; messages with other tags wait,
  /// in order, for the receives that ask for them. The receiver's count and type must equal those of the message
  /// it gets (else both ranks' calls are reported as mismatched).
  virtual std::string send(const void *data, int64_t count, DType type, int peer, int tag) = 0;
  virtual std::string recv(void *data, int64_t count, DType type, int peer, int tag) = 0;

  /// A group of point-to-point calls (NCCL's ncclGroupStart/ncclGroupEnd), for implementations whose send waits
  /// for the receiver's matching recv (NCCL: a send and its recv complete together, and a pair's messages match in
  /// issue order, whatever their tags). The sends and recvs between groupStart() and groupEnd() are posted
  /// together: none waits for its peer when called, and groupEnd() returns when all of them have completed (a
  /// device communicator: when all of them are enqueued on the rank's stream, after which they complete together
  /// there). So two ranks that each send to the other first can exchange without deadlock, where a rank issuing
  /// its calls alone could not (docs/parallelism.md, "Messages"). Groups do not nest and hold sends and recvs of
  /// this communicator only; every buffer stays untouched until groupEnd() returns. Errors as any call's.
  /// The defaults issue each call as it comes (groupStart and groupEnd do nothing): right for the implementations
  /// whose send returns without waiting for the receiver (threads, MPI, the same-device world), provided the
  /// caller issues a group's sends before its recvs (a recv waits for its message, and the peer's send may come
  /// later in the peer's group).
  virtual std::string groupStart() { return {}; }
  virtual std::string groupEnd() { return {}; }

  /// A tensor split along an inner dimension. allGatherDim: `send` is [outer][chunk], `recv` is
  /// [outer][size()][chunk] (the ranks' slices concatenated along the middle dimension). reduceScatterDim: `send`
  /// is [outer][size()][chunk], rank r receives [outer][chunk], the reduction of every rank's slice r. The buffers
  /// must not overlap. The defaults are the contiguous collective plus a local permutation through a scratch
  /// buffer (what NCCL does); implementations that can address peers' memory override them.
  virtual std::string allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type);
  virtual std::string reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                                       ReduceOp op);

  /// Collective over this group (MPI_Comm_split / ncclCommSplit): ranks passing the same color form a new group
  /// named `name`, ordered by key, then by rank here; ranks of one color must pass the same name. A negative color
  /// takes no part in any new group: it gets nullptr and an empty error. On failure, nullptr and `error`.
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string &name, std::string &error) = 0;

  /// Marks this rank failed: every rank of the world blocked in (or later calling) any operation of any group
  /// returns promptly with an error naming this rank, this group and `reason`. The first failure of a world wins;
  /// later ones change nothing. Callable from any thread.
  virtual void abort(const std::string &reason) = 0;
};

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_COMMUNICATOR_H
