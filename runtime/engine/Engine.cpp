//===- Engine.cpp - Executes a plan's programs on the CPU ------------------===//

#include "Engine.h"

#include "StepBinder.h"

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace megatron::runtime {

std::uint64_t dropoutSeedFor(std::uint64_t seed, std::int64_t iteration, std::int64_t microBatch) {
  // splitmix64 over the three, so that neighbouring iterations get unrelated masks.
  auto mix = [](std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  return mix(mix(mix(seed) ^ static_cast<std::uint64_t>(iteration)) ^ static_cast<std::uint64_t>(microBatch));
}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::create(plan::Plan plan, std::string &error, ParallelRank rank) {
  if (rank.tpSize < 1 || rank.tpRank < 0 || rank.tpRank >= rank.tpSize) {
    error = "tensor-parallel rank " + std::to_string(rank.tpRank) + " is outside a group of " +
            std::to_string(rank.tpSize);
    return nullptr;
  }
  std::unique_ptr<Engine> engine(new Engine());
  engine->planValue = std::move(plan);
  engine->rank = rank;
  const plan::Plan &p = engine->planValue;

  // One float type per plan: f32 for training, f64 for gradient checks.
  std::optional<plan::DType> floatType;
  for (const plan::Buffer &b : p.buffers) {
    if (b.dtype == plan::DType::I32)
      continue;
    if (b.dtype != plan::DType::F32 && b.dtype != plan::DType::F64) {
      error = std::string("the CPU backend runs f32 and f64 plans; this plan has ") + plan::toString(b.dtype) +
              " buffers";
      return nullptr;
    }
    if (floatType && *floatType != b.dtype) {
      error = "the CPU backend needs one float type per plan; this plan mixes f32 and f64";
      return nullptr;
    }
    floatType = b.dtype;
  }

  for (int arena = 0; arena < plan::kNumArenas; ++arena) {
    std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(p.arenaBytes[arena], plan::kAlignment));
    bytes = (bytes + plan::kAlignment - 1) / plan::kAlignment * plan::kAlignment;
    void *memory = std::aligned_alloc(plan::kAlignment, bytes);
    if (!memory) {
      error = std::string("cannot allocate the ") + std::to_string(bytes) + "-byte '" +
              plan::toString(static_cast<plan::Arena>(arena)) + "' arena";
      return nullptr;
    }
    std::memset(memory, 0, bytes);
    engine->arenas.emplace_back(static_cast<std::byte *>(memory), std::free);
  }

  StepBinder binder(*engine);
  std::int64_t workspace = 0;
  for (const plan::Program &program : p.programs)
    for (const plan::Step &step : program.steps)
      workspace = std::max(workspace, binder.workspaceBytes(step));
  engine->workspaceStorage.resize(static_cast<std::size_t>(workspace) + plan::kAlignment);

  for (const plan::Program &program : p.programs) {
    std::vector<BoundStep> steps;
    for (std::size_t i = 0; i < program.steps.size(); ++i) {
      std::optional<BoundStep> bound =
          floatType == plan::DType::F64 ? binder.bind<double>(program.steps[i], i, program.name, error)
                                        : binder.bind<float>(program.steps[i], i, program.name, error);
      if (!bound)
        return nullptr;
      steps.push_back(std::move(*bound));
    }
    engine->programs.emplace_back(program.name, std::move(steps));
  }
  return engine;
}

void *Engine::data(int id) {
  const plan::Buffer &b = planValue.buffers[id];
  return arenas[static_cast<int>(b.arena)].get() + b.offset;
}

std::string Engine::run(const std::string &name, const RunContext &context) {
  for (auto &[programName, steps] : programs) {
    if (programName != name)
      continue;
    for (BoundStep &step : steps)
      if (std::string error = step.run(context); !error.empty())
        return error;
    return {};
  }
  return "the plan has no program '" + name + "'";
}

void Engine::zero(plan::Arena arena) {
  std::memset(arenas[static_cast<int>(arena)].get(), 0,
              static_cast<std::size_t>(planValue.arenaBytes[static_cast<int>(arena)]));
}

double Engine::loss(const std::string &name) {
  const plan::Program *program = planValue.program(name);
  if (!program)
    return 0.0;
  if (buffer(program->loss).dtype == plan::DType::F64)
    return *as<double>(program->loss);
  return *as<float>(program->loss);
}

std::int64_t Engine::allocatedBytes() const {
  return planValue.totalBytes() + static_cast<std::int64_t>(workspaceStorage.size());
}

} // namespace megatron::runtime
