//===- DeviceEngine.h - Executes a plan's programs on a device ---*- C++ -*-===//
//
// The device counterpart of runtime::Engine: it allocates the plan's arenas in device memory, laid out at the
// plan's offsets in the buffers' real storage types (bf16 and f16 as two bytes), binds every step of every program
// once (generated kernels with their arguments, cuBLASLt-shaped GEMMs, and the collectives and pipeline messages
// as calls of the rank's communicators on device pointers: DeviceCollectives.h), and runs a program as a sequence
// of launches with no host copy between steps. Only the index-status words (one per
// step that checks ids or labels) come back to the host, once at the end of a program. MLIR-free; the device
// itself is a DeviceBackend.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DEVICE_DEVICEENGINE_H
#define MEGATRON_RUNTIME_DEVICE_DEVICEENGINE_H

#include "runtime/device/DeviceBackend.h"
#include "runtime/device/DeviceCollectives.h"
#include "runtime/device/KernelLaunch.h"
#include "runtime/device/StreamSpans.h"
#include "runtime/engine/Engine.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron::device {

class DeviceEngine {
public:
  /// Allocates the arenas on `backend`, prepares the kernels of `kernels` (codegen::generateKernels(plan)) and
  /// binds every program. `kernels` and `backend` must outlive the engine.
  /// The communicators are runtime::Engine::create's, with buffers that are device pointers of `backend`'s device
  /// (the same-device communicator, SameDeviceCommunicator.h, or NCCL): `tensorGroup` of parallel.tensor ranks,
  /// `dataGroup` of parallel.data replicas, `pipelineGroup` of the plan's stages (rank = stage) and
  /// `embeddingGroup` of the stages that hold a tied embedding; null stands for one rank. The tensor group's
  /// blocks for all_reduce_grads with a group_size are split off here, collectively: every rank of the group must
  /// create its engine for the same plan at the same time. Fails with a message on groups that do not fit the
  /// plan, a step the code generator left Missing, or a step no backend call implements.
  static std::unique_ptr<DeviceEngine> create(const plan::Plan &plan, const codegen::KernelSet &kernels,
                                              DeviceBackend &backend, std::string &error,
                                              comm::Communicator *tensorGroup = nullptr,
                                              comm::Communicator *dataGroup = nullptr,
                                              comm::Communicator *pipelineGroup = nullptr,
                                              comm::Communicator *embeddingGroup = nullptr);
  ~DeviceEngine();
  DeviceEngine(const DeviceEngine &) = delete;
  DeviceEngine &operator=(const DeviceEngine &) = delete;

  const plan::Plan &plan() const { return planValue; }

  /// Runs program `name` with the context's dropout seed, training flag and loss scale (and, for a pipeline
  /// chunk's halves, its micro-batch, which tags the messages, and stash slot). Returns an empty string or an
  /// error naming the step: a backend failure, a failed collective, or an id or label out of range ("step 0 of
  /// train_step (embedding at 'embedding.word_embeddings'): an id or label at position 17 is outside its
  /// range"). With communicators, a failed step aborts them, so that no peer waits for this rank.
  std::string run(const std::string &name, const runtime::RunContext &context);

  /// Pipeline messages issued in units, as NCCL needs them (docs/parallelism.md, "Messages"): a send blocks until
  /// the peer's matching recv and a pair's messages match in issue order, so a stage that issued every send and
  /// recv step alone as its programs run would hang every 1F1B and interleaved schedule. The training loop takes
  /// its units from plan::messageUnits(schedule, MessageIssue::GroupedPerBackwardForwardPair), which mt-plan checked
  /// (plan::checkInOrderMessages), and calls exchange() before each unit's programs: one group of the previous
  /// unit's trailing sends (the send steps after a program's last computing step) and the unit's programs' leading
  /// recvs (the recv steps before their first computing step). From the first exchange on, those steps do not
  /// communicate: a trailing send copies its buffer to a staging buffer and is held for the next group (the memory
  /// planner reuses the buffer in the next program), and a leading recv copies from the staging buffer the group
  /// received it into (its destination may still be in use until the program runs). Other message steps are issued
  /// alone, as the check models them. flushMessages() sends the held sends as a group of their own and ends the
  /// units: call it after the schedule, before the iteration's other collectives. A program of the unit is named
  /// with the micro-batch that tags its messages.
  struct ScheduledRun {
    std::string name;
    std::int64_t microBatch = 0;
  };
  std::string exchange(const std::vector<ScheduledRun> &unit);
  std::string flushMessages();

  /// The scalar the last run of `name` left in its loss buffer (copied to the host), or an error.
  std::string loss(const std::string &name, double &value);

  /// The parameters changed on the device (uploaded, stepped by the optimizer): the next run() first refreshes
  /// the 16-bit copies with the plan's cast_weights program, as runtime::Engine::weightsChanged. address(),
  /// arenaAddress() and upload() of a parameter call it; DeviceOptimizer, which writes through addresses it took
  /// once, calls it after each step.
  void weightsChanged() { weightsFresh = false; }

  /// Seconds this rank's stream has spent in the programs' collectives and pipeline messages since the engine was
  /// made, waiting for its peers included (what the CPU engine's communicationSeconds counts); 0 on one rank, where
  /// nothing is timed. Reads the markers recorded around them since the last call (StreamSpans.h): call it where
  /// the stream's work is done anyway (after a loss or a norm came down), or it waits for that work.
  std::string communicationSeconds(double &seconds);

  /// Zeroes a whole arena on the device (the gradients before an iteration's first micro-batch).
  std::string zero(plan::Arena arena);

  /// Buffer `id`'s device address (a stash buffer's in slot 0), and host copies of its bytes in device storage
  /// (numElements · deviceBytes).
  void *address(int id);
  /// The start of `arena` in device memory (null when it is empty): the distributed optimizer's flat views.
  void *arenaAddress(plan::Arena arena) {
    if (arena == plan::Arena::Params)
      weightsChanged();
    return arenas[size_t(arena)];
  }
  std::size_t bytes(int id) const;
  std::string upload(int id, const void *host);
  std::string download(int id, void *host);

private:
  struct BoundStep;
  struct BoundProgram;

  DeviceEngine(const plan::Plan &plan, const codegen::KernelSet &kernels, DeviceBackend &backend);
  std::string bindProgram(const plan::Program &program, int slot);
  std::string runStep(BoundStep &step, const RuntimeValues &values, const runtime::RunContext &context);
  /// `step` timed as communication (with communicators; else as it is).
  HostStep timed(HostStep step);
  /// Buffer `id`'s address in stash slot `slot`.
  void *slotAddress(int id, int slot);
  /// A message step of a program: alone, or staged while units are issued (exchange).
  std::string messageStep(const BoundMessage &message, bool leading, const runtime::RunContext &context);
  /// `bytes` of the staging buffer's sends or recvs half (reset by each exchange), or null and `error`.
  void *stage(bool send, std::size_t bytes, std::string &error);
  /// One group on the pipeline communicator: the held sends, then `recvs` (message, tag) into staging buffers.
  std::string issueGroup(const std::vector<std::pair<const BoundMessage *, int>> &recvs);
  /// Aborts the rank's first group with `error` (no peer may wait for this rank) and returns it.
  std::string failed(const std::string &error);

  plan::Plan planValue;
  const codegen::KernelSet &kernels;
  DeviceBackend &backend;
  RankGroups groups;
  std::vector<std::byte *> arenas;    // per plan::Arena, null when empty
  unsigned long long *status = nullptr; // device words, one per step that reports indices
  void *workspace = nullptr;          // the collectives' packed gradients
  std::vector<std::unique_ptr<BoundProgram>> programs;
  bool weightsFresh = false; // the weights arena holds the current parameters' 16-bit copies
  std::unique_ptr<StreamSpans> communication; // the collectives' spans; null on one rank

  // Pipeline units (exchange). The staging buffer holds the messages that do not go to or from their own buffers:
  // the held trailing sends of at most one unit and the leading recvs of the next (a unit runs at most two
  // programs, a backward and a forward), so each half is twice the largest program's trailing sends or leading
  // recvs, from the plan's send and recv steps (each message 256-byte aligned).
  bool units = false;
  std::byte *staging = nullptr;
  std::size_t sendStagingBytes = 0, recvStagingBytes = 0, sendStaged = 0, recvStaged = 0;
  struct HeldSend {
    BoundMessage message;
    void *staged;
    int tag;
  };
  std::vector<HeldSend> held;
  std::map<std::pair<int, int>, void *> received; // (peer, tag) -> the staging buffer the unit's group filled
};

} // namespace megatron::device

#endif // MEGATRON_RUNTIME_DEVICE_DEVICEENGINE_H
