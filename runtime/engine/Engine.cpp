//===- Engine.cpp - Executes a plan's programs on the CPU ------------------===//

#include "Engine.h"

#include "CollectiveLayout.h"
#include "StepBinder.h"

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <chrono>
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
  return createImpl(std::move(plan), error, rank, nullptr, nullptr);
}

std::unique_ptr<Engine> Engine::create(plan::Plan plan, std::string &error, comm::Communicator *tensorGroup,
                                       comm::Communicator *dataGroup, comm::Communicator *pipelineGroup,
                                       comm::Communicator *embeddingGroup) {
  if (error = checkParallelGroups(plan, tensorGroup, dataGroup, pipelineGroup); !error.empty())
    return nullptr;
  const int size = tensorGroup ? tensorGroup->size() : 1;
  return createImpl(std::move(plan), error, ParallelRank{tensorGroup ? tensorGroup->rank() : 0, size},
                    tensorGroup, dataGroup, pipelineGroup, embeddingGroup);
}

comm::Communicator *Engine::subGroup(std::int64_t groupSize) const {
  if (!tpGroup || groupSize <= 1)
    return nullptr;
  if (groupSize >= tpGroup->size())
    return tpGroup;
  auto it = subGroups.find(groupSize);
  return it == subGroups.end() ? nullptr : it->second.get();
}

std::unique_ptr<Engine> Engine::createImpl(plan::Plan plan, std::string &error, ParallelRank rank,
                                           comm::Communicator *tensorGroup, comm::Communicator *dataGroup,
                                           comm::Communicator *pipelineGroup, comm::Communicator *embeddingGroup) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->planValue = std::move(plan);
  engine->rank = rank;
  engine->tpGroup = tensorGroup;
  engine->dpGroup = dataGroup;
  engine->ppGroup = pipelineGroup;
  engine->embGroup = embeddingGroup;
  const plan::Plan &p = engine->planValue;
  if (tensorGroup) {
    comm::Communicator *group = tensorGroup;
    Engine *self = engine.get();
    engine->allReduce = [group, self](void *data, std::int64_t count, plan::DType dtype, bool max) {
      auto start = std::chrono::steady_clock::now();
      std::string error = group->allReduce(data, count, dtype, max ? comm::ReduceOp::Max : comm::ReduceOp::Sum);
      self->commSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return error;
    };
    // Sub-groups of consecutive ranks (the ranks that share a key/value head sum its gradient).
    if (error = splitTensorBlocks(p, *tensorGroup, engine->subGroups); !error.empty())
      return nullptr;
  }

  // One float type per plan: f32 for training (with bf16/f16 buffers emulated on f32 storage), f64 for gradient
  // checks.
  std::optional<plan::DType> floatType;
  for (int arena = 0; arena < plan::kNumArenas; ++arena)
    engine->storageScale[arena] = 1;
  for (const plan::Buffer &b : p.buffers) {
    if (b.dtype == plan::DType::I32)
      continue;
    if (b.dtype != plan::DType::F32 && b.dtype != plan::DType::F64 && b.dtype != plan::DType::BF16 &&
        b.dtype != plan::DType::F16) {
      error = std::string("the CPU backend runs f32, f64, bf16 and f16 plans; this plan has ") +
              plan::toString(b.dtype) + " buffers";
      return nullptr;
    }
    if (b.dtype == plan::DType::BF16 || b.dtype == plan::DType::F16)
      engine->storageScale[static_cast<int>(b.arena)] = 2;
    plan::DType stored = storageType(b.dtype);
    if (floatType && *floatType != stored) {
      error = "the CPU backend needs one float type per plan; this plan mixes f64 with f32 or 16-bit buffers";
      return nullptr;
    }
    floatType = stored;
  }

  // Stash slots back to back, one of arenaBytes[Stash] each, shared by the stage's chunks.
  const std::int64_t slots = std::max<std::int64_t>(p.pipeline.stashSlots, 1);
  for (int arena = 0; arena < plan::kNumArenas; ++arena) {
    std::int64_t planned = p.allocatedBytes(static_cast<plan::Arena>(arena)) * engine->storageScale[arena];
    std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(planned, plan::kAlignment));
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
    // A program that reads or writes the stash is bound once per slot of its chunk.
    const bool stashed = touchesStash(p, program);
    int slotCount = stashed ? static_cast<int>(slots) : 1;
    engine->bindingChunk = program.chunk >= 0 ? static_cast<int>(p.pipeline.globalChunk(program.chunk)) : -1;
    for (int slot = 0; slot < slotCount; ++slot) {
      engine->bindingSlot = slot;
      std::vector<BoundStep> steps;
      for (std::size_t i = 0; i < program.steps.size(); ++i) {
        std::optional<BoundStep> bound =
            floatType == plan::DType::F64 ? binder.bind<double>(program.steps[i], i, program.name, error)
                                          : binder.bind<float>(program.steps[i], i, program.name, error);
        if (!bound)
          return nullptr;
        engine->roundSixteenBitOutputs(program.steps[i], *bound);
        steps.push_back(std::move(*bound));
      }
      engine->programs.push_back({program.name, stashed ? slot : -1, std::move(steps)});
    }
  }
  engine->bindingSlot = 0;
  engine->bindingChunk = -1;
  return engine;
}

void *Engine::data(int id) {
  const plan::Buffer &b = planValue.buffers[id];
  if (b.arena == plan::Arena::Params)
    weightsChanged();
  std::int64_t offset = b.offset * storageScale[static_cast<int>(b.arena)];
  if (b.arena == plan::Arena::Stash)
    offset += bindingSlot * stashSlotBytes();
  return arenas[static_cast<int>(b.arena)].get() + offset;
}

void Engine::roundSixteenBitOutputs(const plan::Step &step, BoundStep &bound) {
  // Each 16-bit output is rounded after the kernel wrote it in f32, as a GPU kernel rounds when it stores.
  std::vector<std::pair<float *, cpu::Index>> bf16, f16;
  for (int id : step.outputs) {
    const plan::Buffer &b = buffer(id);
    if (b.dtype == plan::DType::BF16)
      bf16.emplace_back(as<float>(id), b.numElements());
    else if (b.dtype == plan::DType::F16)
      f16.emplace_back(as<float>(id), b.numElements());
  }
  if (bf16.empty() && f16.empty())
    return;
  bound.run = [run = std::move(bound.run), bf16, f16](const RunContext &context) {
    std::string error = run(context);
    for (auto [data, n] : bf16)
      cpu::roundToBf16(n, data);
    for (auto [data, n] : f16)
      cpu::roundToF16(n, data);
    return error;
  };
}

Engine::BoundProgram *Engine::boundProgram(const std::string &name, const RunContext &context) {
  for (BoundProgram &program : programs)
    if (program.name == name && (program.slot < 0 || program.slot == context.stashSlot))
      return &program;
  return nullptr;
}

std::string Engine::refreshWeights(const RunContext &context) {
  if (weightsFresh)
    return {};
  BoundProgram *cast = boundProgram("cast_weights", context);
  for (std::size_t i = 0; cast && i < cast->steps.size(); ++i)
    if (std::string error = cast->steps[i].run(context); !error.empty())
      return "step " + std::to_string(i) + " of cast_weights (the 16-bit copies of the weights): " + error;
  weightsFresh = true;
  return {};
}

std::string Engine::run(const std::string &name, const RunContext &context) {
  BoundProgram *program = boundProgram(name, context);
  if (!program)
    return "the plan has no program '" + name + "' (stash slot " + std::to_string(context.stashSlot) + ")";
  if (std::string error = refreshWeights(context); !error.empty())
    return error;
  for (BoundStep &step : program->steps)
    if (std::string error = step.run(context); !error.empty()) {
      // The peers would wait for this rank in their next collective: fail the group now, so that they stop
      // at once with this error (a failed collective has failed it already; the first failure wins).
      for (comm::Communicator *group : {tpGroup, dpGroup, ppGroup})
        if (group) {
          group->abort(error);
          break;
        }
      return error;
    }
  return {};
}

std::string Engine::runStep(const std::string &name, std::size_t index, const RunContext &context) {
  BoundProgram *program = boundProgram(name, context);
  if (!program)
    return "the plan has no program '" + name + "' (stash slot " + std::to_string(context.stashSlot) + ")";
  if (index >= program->steps.size())
    return "program '" + name + "' has " + std::to_string(program->steps.size()) + " steps, not " +
           std::to_string(index + 1);
  if (std::string error = refreshWeights(context); !error.empty())
    return error;
  return program->steps[index].run(context);
}

void Engine::zero(plan::Arena arena) {
  std::memset(arenas[static_cast<int>(arena)].get(), 0,
              static_cast<std::size_t>(planValue.arenaBytes[static_cast<int>(arena)] *
                                       storageScale[static_cast<int>(arena)]));
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
