//===- CollectiveLayout.h - What a plan's collective and pipeline steps mean -*- C++ -*-===//
//
// The part of binding a collective step (all_reduce, all_gather, reduce_scatter, shard_slice, all_reduce_grads)
// or a pipeline message (send, recv) that does not depend on where the buffers live: its group, the elements of
// each gradient it sums, whether those lie back to back, the [outer][chunk] geometry of a split dimension, and the
// peer and tag of a message. The CPU engine (CollectiveSteps.cpp, PipelineSteps.cpp) and the device engine
// (runtime/device/DeviceCollectives.cpp) both bind through it, so the two agree on what a step does. Every
// function returns an empty problem or what is wrong with the step; none prefixes the step's name. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_ENGINE_COLLECTIVELAYOUT_H
#define MEGATRON_RUNTIME_ENGINE_COLLECTIVELAYOUT_H

#include "megatron/Plan/Plan.h"
#include "runtime/comm/Communicator.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron::runtime {

/// Whether one rank's communicators fit the plan: the tensor group's size is parallel.tensor, the data group's
/// parallel.data, and the pipeline group's its stages with this rank at the plan's stage (null stands for one
/// rank). "" or the mismatch.
std::string checkParallelGroups(const plan::Plan &plan, const comm::Communicator *tensorGroup,
                                const comm::Communicator *dataGroup, const comm::Communicator *pipelineGroup);

/// The communicators over blocks of group_size consecutive ranks of the tensor-parallel group that the plan's
/// all_reduce_grads steps need (1 < group_size < the group's size; the ranks sharing a key/value head sum its
/// gradient), split off `tensorGroup` collectively: every rank reads the same plan, so all ask for the same sizes
/// in the same order. "" or what failed.
std::string splitTensorBlocks(const plan::Plan &plan, comm::Communicator &tensorGroup,
                              std::map<std::int64_t, std::unique_ptr<comm::Communicator>> &blocks);

/// "[2, 32, 64]", for messages.
std::string shapeText(const std::vector<std::int64_t> &shape);

/// The group a collective step runs over: "tp" (absent attribute), "dp" (the data-parallel replicas) or
/// "embedding" (the pipeline stages sharing a tied embedding); else a problem.
std::string collectiveGroup(const plan::Step &step, std::string &problem);

/// The elements of a gradient buffer that an all_reduce_grads step sums: rows [row_offset, row_offset +
/// row_count) of dimension 0 when the step has those attributes, else the whole buffer.
struct GradientSlice {
  std::int64_t offset = 0, count = 0; // elements
  std::string problem;
};
GradientSlice gradientSlice(const plan::Buffer &buffer, const plan::Step &step);

/// The gradients of an all_reduce_grads step when they are whole buffers of one arena and one type lying back to
/// back (nothing but alignment padding between them, which no kernel writes and the arena's zeroing keeps zero):
/// then one collective sums their span in place, without packing.
struct GradientSpan {
  int firstBuffer = -1;        // the buffer at the span's start
  std::int64_t planBytes = 0;  // the span's length in the plan's layout (padding included)
  plan::DType dtype = plan::DType::F32;
};
std::optional<GradientSpan> contiguousGradients(const plan::Plan &plan, const plan::Step &step);

/// Elements an all_reduce_grads step packs when its gradients are not contiguous: the sum of its slices.
std::int64_t packedGradientElements(const plan::Plan &plan, const plan::Step &step);

/// all_gather, reduce_scatter and shard_slice over a group of `groupSize` ranks, which split dimension `dim`
/// (attribute): the local buffer (all_gather's input, the others' output) is [outer][chunk] and the full one
/// [outer][groupSize][chunk]. all_reduce: outer 1, chunk = the whole buffer, and input and output of one size.
struct ShardedCollective {
  std::int64_t outer = 1, chunk = 0;
  std::int64_t localElements() const { return outer * chunk; }
};
std::optional<ShardedCollective> shardedCollective(const plan::Plan &plan, const plan::Step &step, int groupSize,
                                                   std::string &problem);

/// Whether `program` reads or writes the stash (a pipeline chunk's half that keeps or takes a micro-batch's
/// activations): then an engine binds it once per stash slot.
bool touchesStash(const plan::Plan &plan, const plan::Program &program);

/// A send or recv step of pipeline chunk `ownChunk` (global; -1 for a program of no chunk): the peer stage and
/// what tags the message.
struct PipelineMessage {
  bool send = false;
  int peer = -1;              // the pipeline rank (stage) running the peer chunk
  int buffer = -1;            // the message's buffer: send's input, recv's output
  std::int64_t chunks = 1;    // model chunks over all stages
  std::int64_t boundary = 0;  // between chunks boundary and boundary + 1
  std::int64_t index = 0;     // which of the boundary's values
  bool grad = false;          // a gradient (backward) rather than an activation
  /// The tag of this message for micro-batch `microBatch`: unique per (micro-batch, boundary, direction, value).
  int tag(std::int64_t microBatch) const;
};
std::optional<PipelineMessage> pipelineMessage(const plan::Plan &plan, const plan::Step &step, int ownChunk,
                                               std::string &problem);

} // namespace megatron::runtime

#endif // MEGATRON_RUNTIME_ENGINE_COLLECTIVELAYOUT_H
