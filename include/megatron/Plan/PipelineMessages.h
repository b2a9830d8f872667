//===- PipelineMessages.h - Pipeline messages under in-order rendezvous -*- C++ -*-===//
//
// The CPU communicators tag every pipeline message and let send() return before the receiver asks, so any order
// of sends and recvs works there. NCCL does neither: ncclSend and ncclRecv have no tags (a (sender, receiver)
// pair's messages match in issue order) and each completes only when the peer's matching call runs, blocking
// everything after it on the rank's stream. A schedule that is correct on the CPU can therefore hang on GPUs (two
// stages each sending to the other first) or hand a message to the wrong recv (issue orders that differ per
// peer). This file expands every pipeline stage's plan into its ordered pipeline messages and simulates them under
// those semantics, so the compiler can refuse a schedule that would hang or cross, without GPUs. MLIR-free.
//
// Every (tensor-parallel rank, data-parallel replica) has its own pipeline group of `stages` ranks, all running the
// same stage plans on their shards with the same schedule, so checking the stage plans once covers every group.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_PLAN_PIPELINEMESSAGES_H
#define MEGATRON_PLAN_PIPELINEMESSAGES_H

#include "megatron/Plan/Plan.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace megatron::plan {

/// What a pipeline message carries: a pair of sender and receiver agrees on all of it, or the recv got the wrong
/// message.
struct MessageIdentity {
  int64_t microBatch = 0;
  int64_t boundary = 0; // between model chunks boundary and boundary + 1
  bool grad = false;    // a gradient (backward, towards the first stage) rather than an activation
  int64_t index = 0;    // which of the boundary's values
  int64_t elements = 0;
  DType dtype = DType::F32;
  bool operator==(const MessageIdentity &other) const;
  bool operator!=(const MessageIdentity &other) const { return !(*this == other); }
};

/// One send or recv of a stage, in the order the stage issues them.
struct MessageOp {
  bool send = false;
  int peer = -1; // the pipeline stage at the other end
  MessageIdentity identity;
  /// Ops of one rank with the same group, next to each other, are issued as one NCCL group
  /// (ncclGroupStart/ncclGroupEnd): they progress together, and the rank goes on when all of them completed.
  int64_t group = 0;
  std::string where; // e.g. "train_forward_chunk2, micro-batch 3"
};

/// How an engine issues a stage's messages.
enum class MessageIssue {
  /// Every send and recv alone, in program order: what an engine that runs the steps one after the other does.
  OneByOne,
  /// The sends that end a program are held back and issued as one group with the recvs that start the next
  /// program the stage runs (Megatron's send_forward_recv_backward and its kin, batch_isend_irecv); the last
  /// program's sends form a group of their own.
  GroupedAtProgramBoundaries,
  /// As GroupedAtProgramBoundaries, but a backward and the forward the stage runs right after it (1F1B's steady
  /// state) count as one program: the group before them posts both programs' leading recvs, and both programs'
  /// trailing sends wait for the group before the next unit. Megatron-LM batches a steady-state step's four
  /// messages alike (send_forward_backward_recv_forward_backward), around a forward-then-backward pair instead;
  /// pairing that way here hangs where all forwards precede all backwards (as many micro-batches as stages, the
  /// case Megatron treats apart). Plain GroupedAtProgramBoundaries hangs the interleaved schedule: the chunk
  /// boundary between the last and the first stage closes the stages into a ring, and every stage can stand at
  /// its backward's gradient send while its peer's matching recv waits for the peer's next boundary.
  GroupedPerBackwardForwardPair,
};

/// Where a program's send and recv steps stand when its messages are grouped: a leading recv (before the
/// program's first computing step, with no other message step of its middle before it) is posted by the group
/// before the program's unit, a trailing send (after its last computing step, or in a program that computes
/// nothing) is held for the group after it, and the rest are issued alone as the program runs. One entry per step
/// (Alone for the computing steps too). The check and the GPU engine both classify with this.
enum class MessagePlace { Alone, Leading, Trailing };
std::vector<MessagePlace> messagePlaces(const Program &program);

/// The units in which a stage running `schedule` issues its messages: [begin, end) ranges of its entries, each
/// entry alone except that GroupedPerBackwardForwardPair puts a backward and the forward right after it together.
/// Before each unit, the previous unit's trailing sends and the unit's leading recvs are one group. A GPU engine
/// takes its units from here, so that it issues what mt-plan checked.
std::vector<std::pair<size_t, size_t>> messageUnits(const std::vector<PipelineStep> &schedule, MessageIssue issue);

/// Describes `op` for messages: `send of the activation (micro-batch 3, chunks 1->2, value 0, 64 x f32) to stage 2
/// [train_forward_chunk1, micro-batch 3]`.
std::string describe(const MessageOp &op);

/// Simulates the ranks' sequences under in-order rendezvous semantics: each rank works through its groups in
/// order; a send from p to q and a recv at q from p complete together when each is the oldest unmatched op of its
/// direction between p and q and both are in their rank's current group. Returns "" when every op completes;
/// otherwise a message naming a mismatch (both ops, when the pair matched in order carries different messages) or
/// a deadlock (each blocked rank's pending ops).
std::string simulateInOrderRendezvous(const std::vector<std::vector<MessageOp>> &ranks);

/// The pipeline messages one stage issues while running its training schedule (PipelineInfo::schedule: the
/// send and recv steps of train_forward_chunk<c> / train_backward_chunk<c>, in order) and then `evalMicroBatches`
/// evaluation micro-batches (each runs forward_chunk<c> for the stage's chunks in order). Sets `error` (and
/// returns nothing) if a program is missing or a message step is malformed.
std::vector<MessageOp> stageMessages(const Plan &plan, MessageIssue issue, int64_t evalMicroBatches,
                                     std::string &error);

/// Checks that the pipeline stages' messages neither hang nor cross when issued as `issue` says under NCCL's
/// in-order rendezvous semantics: "" when they are fine, else the problem, naming stages and messages. Plans that
/// are not pipelined (one stage) are fine.
std::string checkInOrderMessages(const std::vector<Plan> &stages,
                                 MessageIssue issue = MessageIssue::GroupedPerBackwardForwardPair);

} // namespace megatron::plan

#endif // MEGATRON_PLAN_PIPELINEMESSAGES_H
