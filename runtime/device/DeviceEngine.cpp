//===- DeviceEngine.cpp - Executes a plan's programs on a device ---===//

#include "runtime/device/DeviceEngine.h"

#include "megatron/Plan/PipelineMessages.h"
#include "runtime/device/LinearGemms.h"
#include "runtime/engine/CollectiveLayout.h"

#include <algorithm>

namespace megatron::device {

size_t deviceBytes(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::F64:
  case plan::DType::I64:
    return 8;
  case plan::DType::BF16:
  case plan::DType::F16:
    return 2;
  default:
    return 4;
  }
}

/// One step, resolved at bind time to what the backend will be asked to do.
struct DeviceEngine::BoundStep {
  enum class Kind { Kernels, Gemm, Host } kind = Kind::Host;
  std::string where;                  // "step 3 of train_step (dropout at 'embedding')", for messages
  std::vector<KernelLaunch> launches; // Kernels
  std::vector<HostStep> between;      // Kernels joined by collectives: between[i] runs after launches[i]
  Gemm gemm;                          // Gemm
  HostStep host;                      // Host: a collective or pipeline message (DeviceCollectives.h)
  int statusSlot = -1; // the index-status word of a step whose kernels check ids or labels
};

struct DeviceEngine::BoundProgram {
  std::string name;
  int slot = -1; // the stash slot it is bound to; -1 for a program that does not touch the stash (any slot)
  std::vector<BoundStep> steps;
  int firstStatus = 0, statusCount = 0; // this program's index-status words
  std::vector<BoundMessage> leadingRecvs; // the recvs a unit's exchange posts for it (DeviceEngine::exchange)
};

namespace {

constexpr std::size_t kStagingAlignment = 256;

std::size_t stagingBytes(std::size_t bytes) {
  return (bytes + kStagingAlignment - 1) / kStagingAlignment * kStagingAlignment;
}

bool isMessage(const plan::Step &step) { return step.op == "send" || step.op == "recv"; }

using plan::MessagePlace;

} // namespace

DeviceEngine::DeviceEngine(const plan::Plan &plan, const codegen::KernelSet &kernels, DeviceBackend &backend)
    : planValue(plan), kernels(kernels), backend(backend), arenas(plan::kNumArenas, nullptr) {}

DeviceEngine::~DeviceEngine() {
  for (std::byte *arena : arenas)
    if (arena)
      backend.release(arena);
  if (status)
    backend.release(status);
  if (workspace)
    backend.release(workspace);
  if (staging)
    backend.release(staging);
}

std::unique_ptr<DeviceEngine> DeviceEngine::create(const plan::Plan &plan, const codegen::KernelSet &kernels,
                                                   DeviceBackend &backend, std::string &error,
                                                   comm::Communicator *tensorGroup, comm::Communicator *dataGroup,
                                                   comm::Communicator *pipelineGroup,
                                                   comm::Communicator *embeddingGroup) {
  if (error = runtime::checkParallelGroups(plan, tensorGroup, dataGroup, pipelineGroup); !error.empty())
    return nullptr;
  std::unique_ptr<DeviceEngine> engine(new DeviceEngine(plan, kernels, backend));
  engine->groups.tensor = tensorGroup;
  engine->groups.data = dataGroup;
  engine->groups.pipeline = pipelineGroup;
  engine->groups.embedding = embeddingGroup;
  if (tensorGroup)
    if (error = runtime::splitTensorBlocks(plan, *tensorGroup, engine->groups.tensorBlocks); !error.empty())
      return nullptr;
  if (tensorGroup || dataGroup || pipelineGroup || embeddingGroup)
    engine->communication = std::make_unique<StreamSpans>(backend);
  for (int a = 0; a < plan::kNumArenas; ++a) {
    const int64_t bytes = plan.allocatedBytes(plan::Arena(a));
    if (bytes == 0)
      continue;
    engine->arenas[size_t(a)] = static_cast<std::byte *>(backend.allocate(size_t(bytes), error));
    if (!engine->arenas[size_t(a)]) {
      error = "cannot allocate the " + std::string(plan::toString(plan::Arena(a))) + " arena (" +
              std::to_string(bytes) + " bytes) on " + backend.describe() + ": " + error;
      return nullptr;
    }
  }
  int64_t workspaceBytes = 0;
  for (const plan::Program &program : plan.programs)
    for (const plan::Step &step : program.steps)
      workspaceBytes = std::max(workspaceBytes, collectiveWorkspaceBytes(plan, step));
  if (workspaceBytes > 0) {
    engine->workspace = backend.allocate(size_t(workspaceBytes), error);
    if (!engine->workspace) {
      error = "cannot allocate the collectives' workspace (" + std::to_string(workspaceBytes) + " bytes) on " +
              backend.describe() + ": " + error;
      return nullptr;
    }
  }
  if (error = backend.prepare(kernels.kernels); !error.empty())
    return nullptr;
  const int64_t slots = std::max<int64_t>(plan.pipeline.stashSlots, 1);
  for (const plan::Program &program : plan.programs) {
    // A program that reads or writes the stash is bound once per slot, as the CPU engine binds it.
    const bool stashed = runtime::touchesStash(plan, program);
    for (int slot = 0; slot < (stashed ? slots : 1); ++slot)
      if (error = engine->bindProgram(program, stashed ? slot : -1); !error.empty())
        return nullptr;
  }
  if (const std::size_t bytes = engine->sendStagingBytes + engine->recvStagingBytes; bytes > 0) {
    engine->staging = static_cast<std::byte *>(backend.allocate(bytes, error));
    if (!engine->staging) {
      error = "cannot allocate the pipeline messages' staging buffer (" + std::to_string(bytes) + " bytes) on " +
              backend.describe() + ": " + error;
      return nullptr;
    }
  }
  int words = 0;
  for (const auto &program : engine->programs)
    words += program->statusCount;
  if (words > 0) {
    engine->status = static_cast<unsigned long long *>(backend.allocate(size_t(words) * 8, error));
    if (!engine->status)
      return nullptr;
  }
  return engine;
}

void *DeviceEngine::address(int id) {
  if (planValue.buffers[size_t(id)].arena == plan::Arena::Params)
    weightsChanged();
  return slotAddress(id, 0);
}

void *DeviceEngine::slotAddress(int id, int slot) {
  const plan::Buffer &b = planValue.buffers[size_t(id)];
  int64_t offset = b.offset;
  if (b.arena == plan::Arena::Stash && slot > 0)
    offset += slot * planValue.arenaBytes[size_t(plan::Arena::Stash)];
  return arenas[size_t(b.arena)] + offset;
}

size_t DeviceEngine::bytes(int id) const {
  const plan::Buffer &b = planValue.buffers[size_t(id)];
  return size_t(b.numElements()) * deviceBytes(b.dtype);
}

std::string DeviceEngine::upload(int id, const void *host) { return backend.copyToDevice(address(id), host, bytes(id)); }
std::string DeviceEngine::download(int id, void *host) { return backend.copyToHost(host, address(id), bytes(id)); }

std::string DeviceEngine::zero(plan::Arena arena) {
  const int64_t size = planValue.allocatedBytes(arena);
  return size == 0 ? std::string() : backend.fill(arenas[size_t(arena)], 0, size_t(size));
}

std::string DeviceEngine::bindProgram(const plan::Program &program, int slot) {
  auto bound = std::make_unique<BoundProgram>();
  bound->name = program.name;
  bound->slot = slot;
  int statusBase = 0;
  for (const auto &other : programs)
    statusBase += other->statusCount;
  bound->firstStatus = statusBase;
  auto addressOf = [this, slot](int id) { return slotAddress(id, slot); };
  const CollectiveBinding collectives{
      planValue, groups, backend, addressOf, workspace,
      program.chunk >= 0 ? int(planValue.pipeline.globalChunk(program.chunk)) : -1};

  std::vector<const codegen::StepPlan *> stepPlans(program.steps.size(), nullptr);
  for (const codegen::StepPlan &stepPlan : kernels.steps)
    if (stepPlan.ref.program == program.name && stepPlan.ref.step >= 0 &&
        size_t(stepPlan.ref.step) < stepPlans.size())
      stepPlans[size_t(stepPlan.ref.step)] = &stepPlan;

  const std::vector<MessagePlace> places = plan::messagePlaces(program); // as mt-plan's check classifies them
  std::size_t trailingBytes = 0, leadingBytes = 0;
  for (size_t i = 0; i < program.steps.size(); ++i) {
    const plan::Step &step = program.steps[i];
    BoundStep b;
    b.where = "step " + std::to_string(i) + " of " + program.name + " (" + step.op +
              (step.loc.empty() ? "" : " at '" + step.loc + "'") + ")";
    const codegen::StepPlan *stepPlan = stepPlans[i];
    if (!stepPlan)
      return b.where + ": the kernel set has no entry for it (generated from another plan?)";
    std::string error;
    auto bindLaunches = [&]() {
      b.kind = BoundStep::Kind::Kernels;
      for (int k : stepPlan->kernels) {
        std::optional<KernelLaunch> launch = KernelLaunch::bind(kernels.kernels[size_t(k)], step, addressOf, error);
        if (!launch)
          return false;
        if (launch->reportsIndices() && b.statusSlot < 0)
          b.statusSlot = statusBase + bound->statusCount++;
        b.launches.push_back(std::move(*launch));
      }
      return true;
    };
    switch (stepPlan->backend) {
    case codegen::StepBackend::Generated:
      if (!bindLaunches())
        return b.where + ": " + error;
      break;
    case codegen::StepBackend::CublasLt: {
      std::optional<Gemm> gemm = linearGemm(planValue, step, addressOf, error);
      if (!gemm)
        return b.where + ": " + error;
      b.kind = BoundStep::Kind::Gemm;
      b.gemm = *gemm;
      break;
    }
    case codegen::StepBackend::Nccl: {
      if (!stepPlan->kernels.empty()) { // generated kernels joined by collectives
        std::optional<std::vector<HostStep>> between =
            bindJoiningCollectives(collectives, step, stepPlan->kernels.size(), error);
        if (!between || !bindLaunches())
          return b.where + ": " + error;
        for (HostStep &collective : *between)
          b.between.push_back(timed(std::move(collective)));
        break;
      }
      if (isMessage(step)) {
        std::optional<BoundMessage> message = bindPipelineMessage(collectives, step, error);
        if (!message)
          return b.where + ": " + error;
        const MessagePlace place = places[i];
        (place == MessagePlace::Leading ? leadingBytes : trailingBytes) +=
            place == MessagePlace::Alone ? 0 : stagingBytes(message->bytes);
        if (place == MessagePlace::Leading)
          bound->leadingRecvs.push_back(*message);
        HostStep alone = timed([message = *message](const runtime::RunContext &context) {
          return message.issue(message.data, message.tag(context));
        });
        b.kind = BoundStep::Kind::Host;
        b.host = place == MessagePlace::Alone
                     ? std::move(alone)
                     : HostStep([this, message = *message, alone = std::move(alone),
                                 leading = place == MessagePlace::Leading](const runtime::RunContext &context) {
                         return units ? messageStep(message, leading, context) : alone(context);
                       });
        break;
      }
      // The rank's communicators (a single rank's collectives copy or do nothing).
      std::optional<HostStep> host = bindCollectiveStep(collectives, step, error);
      if (!host)
        return b.where + ": " + error;
      b.kind = BoundStep::Kind::Host;
      b.host = timed(std::move(*host));
      break;
    }
    case codegen::StepBackend::Missing:
      return b.where + ": the code generator has no CUDA kernel for it: " + stepPlan->reason;
    }
    bound->steps.push_back(std::move(b));
  }
  sendStagingBytes = std::max(sendStagingBytes, 2 * trailingBytes);
  recvStagingBytes = std::max(recvStagingBytes, 2 * leadingBytes);
  programs.push_back(std::move(bound));
  return {};
}

HostStep DeviceEngine::timed(HostStep step) {
  if (!communication)
    return step;
  return [spans = communication.get(), step = std::move(step)](const runtime::RunContext &context) {
    if (std::string error = spans->begin(); !error.empty())
      return error;
    std::string error = step(context);
    std::string ended = spans->end(); // also after a failure, so that the spans stay paired
    return error.empty() ? ended : error;
  };
}

std::string DeviceEngine::communicationSeconds(double &seconds) {
  double milliseconds = 0;
  if (communication)
    if (std::string error = communication->totalMilliseconds(milliseconds); !error.empty())
      return "reading the communication time: " + error;
  seconds = milliseconds / 1000.0;
  return {};
}

std::string DeviceEngine::runStep(BoundStep &step, const RuntimeValues &values,
                                  const runtime::RunContext &context) {
  std::string error;
  switch (step.kind) {
  case BoundStep::Kind::Kernels: {
    RuntimeValues mine = values;
    mine.indexStatus = step.statusSlot < 0 ? nullptr : status + step.statusSlot;
    for (size_t i = 0; i < step.launches.size() && error.empty(); ++i) {
      KernelLaunch &launch = step.launches[i];
      error = backend.launch(launch.kernel(), launch.arguments(mine));
      if (error.empty() && i < step.between.size())
        error = step.between[i](context);
    }
    break;
  }
  case BoundStep::Kind::Gemm:
    error = backend.gemm(step.gemm);
    break;
  case BoundStep::Kind::Host:
    error = step.host(context);
    break;
  }
  return error.empty() ? error : step.where + ": " + error;
}

std::string DeviceEngine::run(const std::string &name, const runtime::RunContext &context) {
  auto found = std::find_if(programs.begin(), programs.end(), [&](const auto &p) {
    return p->name == name && (p->slot < 0 || p->slot == context.stashSlot);
  });
  if (found == programs.end())
    return "the plan has no program '" + name + "'" +
           (planValue.program(name) ? " (stash slot " + std::to_string(context.stashSlot) + ")" : "");
  if (!weightsFresh && name != "cast_weights") {
    if (planValue.program("cast_weights"))
      if (std::string error = run("cast_weights", context); !error.empty())
        return "the 16-bit copies of the weights: " + error;
    weightsFresh = true;
  }
  BoundProgram &program = **found;
  RuntimeValues values;
  values.tpRank = groups.tensor ? groups.tensor->rank() : 0;
  values.workspace = workspace;
  values.dropoutSeed = context.dropoutSeed;
  values.training = context.training;
  values.lossScale = context.lossScale;

  unsigned long long *words = status + program.firstStatus;
  const size_t statusBytes = size_t(program.statusCount) * 8;
  if (statusBytes)
    if (std::string error = backend.fill(words, 0xff, statusBytes); !error.empty())
      return error;
  for (BoundStep &step : program.steps)
    if (std::string error = runStep(step, values, context); !error.empty())
      return failed(error);
  if (!statusBytes)
    return {};

  // The index checks of the whole program come back in one copy; the first step whose word is set names the
  // error, as the CPU engine's first failing step would.
  std::vector<unsigned long long> reported(size_t(program.statusCount));
  if (std::string error = backend.copyToHost(reported.data(), words, statusBytes); !error.empty())
    return error;
  for (const BoundStep &step : program.steps)
    if (step.statusSlot >= 0 && reported[size_t(step.statusSlot - program.firstStatus)] != ~0ull)
      return step.where + ": an id or label at position " +
             std::to_string(reported[size_t(step.statusSlot - program.firstStatus)]) + " is outside its range";
  return {};
}

// The peers would wait for this rank in their next collective: fail the world now (a failed collective has failed
// it already; the first failure wins).
std::string DeviceEngine::failed(const std::string &error) {
  for (comm::Communicator *group : {groups.tensor, groups.data, groups.pipeline})
    if (group) {
      group->abort(error);
      break;
    }
  return error;
}

void *DeviceEngine::stage(bool send, std::size_t bytes, std::string &error) {
  std::size_t &used = send ? sendStaged : recvStaged;
  const std::size_t capacity = send ? sendStagingBytes : recvStagingBytes;
  if (used + stagingBytes(bytes) > capacity) {
    error = "the pipeline messages' staging buffer holds " + std::to_string(capacity) + " bytes of " +
            (send ? "sends" : "recvs") + " (two programs' worth), not " + std::to_string(used + stagingBytes(bytes)) +
            ": a unit of more than a backward and a forward?";
    return nullptr;
  }
  void *at = staging + (send ? 0 : sendStagingBytes) + used;
  used += stagingBytes(bytes);
  return at;
}

std::string DeviceEngine::messageStep(const BoundMessage &message, bool leading, const runtime::RunContext &context) {
  const int tag = message.tag(context);
  if (leading) {
    auto found = received.find({message.message.peer, tag});
    if (found == received.end())
      return "its recv was not posted by the unit's exchange (DeviceEngine::exchange without this program?)";
    void *from = found->second;
    received.erase(found);
    return backend.copyOnDevice(message.data, from, message.bytes);
  }
  std::string error;
  void *to = stage(/*send=*/true, message.bytes, error);
  if (!to)
    return error;
  if (error = backend.copyOnDevice(to, message.data, message.bytes); !error.empty())
    return error;
  held.push_back({message, to, tag});
  return {};
}

std::string DeviceEngine::issueGroup(const std::vector<std::pair<const BoundMessage *, int>> &recvs) {
  recvStaged = 0; // the previous unit's programs took theirs (exchange checks)
  if (held.empty() && recvs.empty())
    return {};
  comm::Communicator *group = groups.pipeline;
  if (!group)
    return "pipeline messages need the pipeline group's communicator";
  std::vector<void *> into;
  for (const auto &[message, tag] : recvs) {
    std::string error;
    into.push_back(stage(/*send=*/false, message->bytes, error));
    if (!into.back())
      return error;
  }
  // Sends first: on communicators without groups (whose sends do not block) a recv waits for its message.
  HostStep issue = timed([&](const runtime::RunContext &) {
    std::string error = group->groupStart();
    for (size_t i = 0; i < held.size() && error.empty(); ++i)
      error = held[i].message.issue(held[i].staged, held[i].tag);
    for (size_t i = 0; i < recvs.size() && error.empty(); ++i)
      error = recvs[i].first->issue(into[i], recvs[i].second);
    std::string ended = group->groupEnd(); // closes the group also after a failure
    return error.empty() ? ended : error;
  });
  if (std::string error = issue(runtime::RunContext{}); !error.empty())
    return error;
  held.clear();
  sendStaged = 0;
  for (size_t i = 0; i < recvs.size(); ++i)
    received[{recvs[i].first->message.peer, recvs[i].second}] = into[i];
  return {};
}

std::string DeviceEngine::exchange(const std::vector<ScheduledRun> &unit) {
  std::string where = "the pipeline messages before";
  for (const ScheduledRun &run : unit)
    where += " " + run.name + " (micro-batch " + std::to_string(run.microBatch) + ")";
  if (!received.empty())
    return failed(where + ": the previous unit's programs left " + std::to_string(received.size()) +
                  " received message(s) untaken");
  std::vector<std::pair<const BoundMessage *, int>> recvs;
  for (const ScheduledRun &run : unit) {
    auto found = std::find_if(programs.begin(), programs.end(), [&](const auto &p) { return p->name == run.name; });
    if (found == programs.end())
      return failed(where + ": the plan has no program '" + run.name + "'");
    for (const BoundMessage &message : (*found)->leadingRecvs)
      recvs.emplace_back(&message, message.message.tag(run.microBatch));
  }
  units = true;
  if (std::string error = issueGroup(recvs); !error.empty())
    return failed(where + ": " + error);
  return {};
}

std::string DeviceEngine::flushMessages() {
  const bool untaken = !received.empty();
  received.clear();
  units = false;
  if (untaken)
    return failed("the pipeline messages after the schedule: its programs left received messages untaken");
  if (std::string error = issueGroup({}); !error.empty())
    return failed("the pipeline messages after the schedule: " + error);
  return {};
}

std::string DeviceEngine::loss(const std::string &name, double &value) {
  const plan::Program *program = planValue.program(name);
  if (!program || program->loss < 0)
    return "the plan's program '" + name + "' has no scalar loss";
  const plan::Buffer &b = planValue.buffers[size_t(program->loss)];
  if (b.dtype == plan::DType::F64)
    return download(program->loss, &value);
  if (b.dtype != plan::DType::F32 || b.numElements() != 1)
    return "the loss of '" + name + "' is not an f32 or f64 scalar";
  float single = 0;
  std::string error = backend.copyToHost(&single, address(program->loss), sizeof single);
  value = single;
  return error;
}

} // namespace megatron::device
