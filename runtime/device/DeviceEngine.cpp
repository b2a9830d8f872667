//===- DeviceEngine.cpp - Executes a plan's programs on a device ---===//

#include "runtime/device/DeviceEngine.h"

#include "runtime/device/LinearGemms.h"

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
  enum class Kind { Kernels, Gemm, Copy, Nothing } kind = Kind::Nothing;
  std::string where;                  // "step 3 of train_step (dropout at 'embedding')", for messages
  std::vector<KernelLaunch> launches; // Kernels
  Gemm gemm;                          // Gemm
  void *copyTo = nullptr;             // Copy: a collective of one rank
  const void *copyFrom = nullptr;
  size_t copyBytes = 0;
  int statusSlot = -1; // the index-status word of a step whose kernels check ids or labels
};

struct DeviceEngine::BoundProgram {
  std::string name;
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
}

std::unique_ptr<DeviceEngine> DeviceEngine::create(const plan::Plan &plan, const codegen::KernelSet &kernels,
                                                   DeviceBackend &backend, std::string &error) {
  if (plan.parallel.tensor != 1 || plan.parallel.data != 1 || plan.pipeline.stages != 1) {
    error = "the device engine runs single-rank plans only: this plan is compiled for " +
            std::to_string(plan.parallel.tensor) + " tensor-parallel, " + std::to_string(plan.parallel.data) +
            " data-parallel rank(s) and " + std::to_string(plan.pipeline.stages) +
            " pipeline stage(s), whose collectives need NCCL, which the device engine does not call yet";
    return nullptr;
  }
  std::unique_ptr<DeviceEngine> engine(new DeviceEngine(plan, kernels, backend));
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
  if (error = backend.prepare(kernels.kernels); !error.empty())
    return nullptr;
  for (const plan::Program &program : plan.programs)
    if (error = engine->bindProgram(program); !error.empty())
      return nullptr;
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
  const plan::Buffer &b = planValue.buffers[size_t(id)];
  return arenas[size_t(b.arena)] + b.offset;
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

std::string DeviceEngine::bindProgram(const plan::Program &program) {
  auto bound = std::make_unique<BoundProgram>();
  bound->name = program.name;
  int statusBase = 0;
  for (const auto &other : programs)
    statusBase += other->statusCount;
  bound->firstStatus = statusBase;
  auto addressOf = [this](int id) { return address(id); };

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
    switch (stepPlan->backend) {
    case codegen::StepBackend::Generated:
      b.kind = BoundStep::Kind::Kernels;
      for (int k : stepPlan->kernels) {
        std::optional<KernelLaunch> launch = KernelLaunch::bind(kernels.kernels[size_t(k)], step, addressOf, error);
        if (!launch)
          return b.where + ": " + error;
        if (launch->reportsIndices() && b.statusSlot < 0)
          b.statusSlot = statusBase + bound->statusCount++;
        b.launches.push_back(std::move(*launch));
      }
      break;
    case codegen::StepBackend::CublasLt: {
      std::optional<Gemm> gemm = linearGemm(planValue, step, addressOf, error);
      if (!gemm)
        return b.where + ": " + error;
      b.kind = BoundStep::Kind::Gemm;
      b.gemm = *gemm;
      break;
    }
    case codegen::StepBackend::Nccl:
      // One rank (create refuses more): a reduction or gather over one rank is its input, and the gradient sums
      // of finalize_grads change nothing.
      if (step.op == "all_reduce_grads") {
        b.kind = BoundStep::Kind::Nothing;
      } else if ((step.op == "all_reduce" || step.op == "all_gather" || step.op == "reduce_scatter") &&
                 step.inputs.size() == 1 && step.outputs.size() == 1 &&
                 bytes(step.inputs[0]) == bytes(step.outputs[0])) {
        b.kind = step.inputs[0] == step.outputs[0] ? BoundStep::Kind::Nothing : BoundStep::Kind::Copy;
        b.copyTo = address(step.outputs[0]);
        b.copyFrom = address(step.inputs[0]);
        b.copyBytes = bytes(step.outputs[0]);
      } else {
        return b.where + ": needs NCCL, which the device engine does not call yet";
      }
      break;
    case codegen::StepBackend::Missing:
      return b.where + ": the code generator has no CUDA kernel for it: " + stepPlan->reason;
    }
    bound->steps.push_back(std::move(b));
  }
  programs.push_back(std::move(bound));
  return {};
}

std::string DeviceEngine::runStep(BoundStep &step, const RuntimeValues &values) {
  std::string error;
  switch (step.kind) {
  case BoundStep::Kind::Kernels: {
    RuntimeValues mine = values;
    mine.indexStatus = step.statusSlot < 0 ? nullptr : status + step.statusSlot;
    for (KernelLaunch &launch : step.launches)
      if (error = backend.launch(launch.kernel(), launch.arguments(mine)); !error.empty())
        break;
    break;
  }
  case BoundStep::Kind::Gemm:
    error = backend.gemm(step.gemm);
    break;
  case BoundStep::Kind::Copy:
    error = backend.copyOnDevice(step.copyTo, step.copyFrom, step.copyBytes);
    break;
  case BoundStep::Kind::Nothing:
    break;
  }
  return error.empty() ? error : step.where + ": " + error;
}

std::string DeviceEngine::run(const std::string &name, const runtime::RunContext &context) {
  auto found = std::find_if(programs.begin(), programs.end(), [&](const auto &p) { return p->name == name; });
  if (found == programs.end())
    return "the plan has no program '" + name + "'";
  BoundProgram &program = **found;
  RuntimeValues values;
  values.tpRank = 0;
  values.dropoutSeed = context.dropoutSeed;
  values.training = context.training;
  values.lossScale = context.lossScale;

  unsigned long long *words = status + program.firstStatus;
  const size_t statusBytes = size_t(program.statusCount) * 8;
  if (statusBytes)
    if (std::string error = backend.fill(words, 0xff, statusBytes); !error.empty())
      return error;
  for (BoundStep &step : program.steps)
    if (std::string error = runStep(step, values); !error.empty())
      return error;
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
