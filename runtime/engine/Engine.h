//===- Engine.h - Executes a plan's programs on the CPU ---------*- C++ -*-===//
//
// The engine owns the memory of a plan (one allocation per arena, laid out as the compiler planned) and turns
// each program into a list of bound kernel calls, resolved once at load time. Running a program is then a loop
// over closures: no lookups, no allocation. MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_ENGINE_ENGINE_H
#define MEGATRON_RUNTIME_ENGINE_ENGINE_H

#include "megatron/Plan/Plan.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron::runtime {

/// What changes between runs of a program.
struct RunContext {
  bool training = true;          // dropout on (train_step) or off (evaluation)
  std::uint64_t dropoutSeed = 0; // the seed of this micro-batch's dropout masks (see dropoutSeedFor)
};

/// This rank's place in the tensor-parallel group. A plan is one rank's program (SPMD): every rank of the group
/// runs the same plan on its own shard, and the steps whose attributes say that they see a shard (vocab_shard,
/// sequence_shard, shard_dim, head_shard, vocab_parallel; docs/cpu-kernels.md) read the rank to know which one.
/// {0, 1} is a single rank, where those attributes change nothing.
struct ParallelRank {
  int tpRank = 0;
  int tpSize = 1;
};

/// An all-reduce over the tensor-parallel group, in place: `count` elements of `dtype` at `data` become their sum
/// (max = false) or maximum (max = true) over the ranks. Returns an empty string or an error message.
using AllReduceFn = std::function<std::string(void *data, std::int64_t count, plan::DType dtype, bool max)>;

/// The dropout seed of one micro-batch: a pure function of the run's --seed, the iteration and the micro-batch,
/// so a resumed run draws the same masks as an uninterrupted one.
std::uint64_t dropoutSeedFor(std::uint64_t seed, std::int64_t iteration, std::int64_t microBatch);

class Engine {
public:
  /// Allocates the plan's arenas and binds its programs for rank `rank` of the tensor-parallel group. Fails (with
  /// a message) on a step it cannot execute or a rank outside [0, tpSize).
  static std::unique_ptr<Engine> create(plan::Plan plan, std::string &error, ParallelRank rank = {});
  ~Engine();

  const plan::Plan &plan() const { return planValue; }
  const ParallelRank &parallelRank() const { return rank; }

  /// The tensor-parallel group's all-reduce, set by whoever creates the engine (before or after create: steps
  /// look it up when they run). The steps that communicate (the vocab_parallel cross-entropy) call it; null
  /// means a single rank, and such a step then fails unless tpSize is 1.
  AllReduceFn allReduce;

  /// The bytes of buffer `id`.
  void *data(int id);
  template <typename T> T *as(int id) { return static_cast<T *>(data(id)); }
  const plan::Buffer &buffer(int id) const { return planValue.buffers[id]; }

  /// Runs program `name`. Returns an empty string, or an error naming the step, its module and the problem
  /// (a token id outside the vocabulary, a label outside the logits).
  std::string run(const std::string &name, const RunContext &context);

  /// Zeroes a whole arena (the gradients before an iteration's first micro-batch).
  void zero(plan::Arena arena);

  /// The loss the last run of `name` left in its loss buffer.
  double loss(const std::string &name);

  /// Bytes the engine allocated: the plan's arenas plus kernel workspace.
  std::int64_t allocatedBytes() const;

  struct BoundStep {
    std::function<std::string(const RunContext &)> run;
  };

private:
  Engine() = default;
  plan::Plan planValue;
  ParallelRank rank;
  std::vector<std::unique_ptr<std::byte, void (*)(void *)>> arenas;
  std::vector<std::byte> workspaceStorage;
  std::vector<std::pair<std::string, std::vector<BoundStep>>> programs;

  friend class StepBinder;
};

} // namespace megatron::runtime

#endif // MEGATRON_RUNTIME_ENGINE_ENGINE_H
