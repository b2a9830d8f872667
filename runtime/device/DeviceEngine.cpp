//===- DeviceEngine.cpp - Executes a plan's programs on a device ---===//

#include "runtime/device/DeviceEngine.h"

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
};

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
    if (std::string error = runStep(step, values, context); !error.empty()) {
      // The peers would wait for this rank in their next collective: fail the world now (a failed collective
      // has failed it already; the first failure wins).
      for (comm::Communicator *group : {groups.tensor, groups.data, groups.pipeline})
        if (group) {
          group->abort(error);
          break;
        }
      return error;
    }
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
