//===- DeviceCollectives.h - A plan's collectives on device buffers -*- C++ -*-===//
//
// The device engine's collective and pipeline steps (all_reduce, all_gather, reduce_scatter, all_reduce_grads,
// send, recv) bound to comm::Communicator calls on device pointers: what each step means comes from
// runtime/engine/CollectiveLayout.h, as for the CPU engine, and every copy (packing gradients into the
// workspace, the input of an out-of-place all-reduce) is a copy on the device. Nothing here reads device memory
// on the host, so any communicator whose buffers are device pointers works: the same-device communicator, NCCL.
// Internal to runtime/device (DeviceEngine.h holds a RankGroups).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_DEVICECOLLECTIVES_H
#define MEGATRON_RUNTIME_DEVICE_DEVICECOLLECTIVES_H

#include "runtime/comm/Communicator.h"
#include "runtime/device/DeviceBackend.h"
#include "runtime/engine/CollectiveLayout.h"
#include "runtime/engine/Engine.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace megatron::device {

/// One rank's communicators (null: a single rank) and the tensor group's blocks split for all_reduce_grads.
struct RankGroups {
  comm::Communicator *tensor = nullptr, *data = nullptr, *pipeline = nullptr, *embedding = nullptr;
  std::map<std::int64_t, std::unique_ptr<comm::Communicator>> tensorBlocks; // by group_size
  int tensorSize() const { return tensor ? tensor->size() : 1; }
  /// The communicator over blocks of `groupSize` ranks of the tensor group, or null (blocks of one rank).
  comm::Communicator *tensorBlock(std::int64_t groupSize) const;
};

/// A step that runs on the host and issues device work (copies, the communicator's calls).
using HostStep = std::function<std::string(const runtime::RunContext &)>;

/// Device bytes of workspace that `step` needs: the gradients an all_reduce_grads step packs (none when they are
/// reduced in place), the rows' statistics of a vocabulary-parallel cross-entropy.
std::int64_t collectiveWorkspaceBytes(const plan::Plan &plan, const plan::Step &step);

/// What a collective or pipeline step needs to be bound.
struct CollectiveBinding {
  const plan::Plan &plan;
  const RankGroups &groups;
  DeviceBackend &backend;
  std::function<void *(int)> address; ///< a buffer's device address (with the program's stash slot)
  void *workspace = nullptr;          ///< at least collectiveWorkspaceBytes of every step
  int chunk = -1;                     ///< the program's global model chunk, for pipeline messages
};

/// A pipeline message step (send or recv) bound to the pipeline group: the device engine issues it alone, or holds
/// it for the group that pipeline units issue (DeviceEngine::exchange) through a staging buffer.
struct BoundMessage {
  runtime::PipelineMessage message; ///< its peer, direction and tag per micro-batch
  comm::Communicator *group = nullptr;
  void *data = nullptr; ///< the buffer it sends from or receives into (in the program's stash slot)
  std::int64_t count = 0;
  plan::DType dtype = plan::DType::F32;
  std::size_t bytes = 0; ///< count elements in device storage
  bool send() const { return message.send; }
  int tag(const runtime::RunContext &context) const { return message.tag(context.microBatch); }
  /// The send from, or the recv into, `buffer` (`data` itself, or a staging copy of bytes()).
  std::string issue(void *buffer, int tag) const {
    return message.send ? group->send(buffer, count, dtype, message.peer, tag)
                        : group->recv(buffer, count, dtype, message.peer, tag);
  }
};

/// A send or recv step as a BoundMessage, or std::nullopt and a problem (without the step's name).
std::optional<BoundMessage> bindPipelineMessage(const CollectiveBinding &binding, const plan::Step &step,
                                                std::string &problem);

/// The step as a HostStep, or std::nullopt and a problem (without the step's name). A send or recv step issues its
/// message alone.
std::optional<HostStep> bindCollectiveStep(const CollectiveBinding &binding, const plan::Step &step,
                                           std::string &problem);

/// The collectives that join the `kernels` generated kernels of a step (codegen::StepBackend::Nccl with kernels):
/// entry i runs after kernel i. The vocabulary-parallel cross-entropy forward: the all-reduce (max) of the rows'
/// maxima after row_max, the all-reduce (sum) of their [sum, target] pairs after partial_sums, over the tensor
/// group, on the workspace the kernels share.
std::optional<std::vector<HostStep>> bindJoiningCollectives(const CollectiveBinding &binding, const plan::Step &step,
                                                            std::size_t kernels, std::string &problem);

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_DEVICECOLLECTIVES_H
