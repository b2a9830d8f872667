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

/// The dropout seed of one micro-batch: a pure function of the run's --seed, the iteration and the micro-batch,
/// so a resumed run draws the same masks as an uninterrupted one.
std::uint64_t dropoutSeedFor(std::uint64_t seed, std::int64_t iteration, std::int64_t microBatch);

class Engine {
public:
  /// Allocates the plan's arenas and binds its programs. Fails (with a message) on a step it cannot execute.
  static std::unique_ptr<Engine> create(plan::Plan plan, std::string &error);
  ~Engine();

  const plan::Plan &plan() const { return planValue; }

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
  std::vector<std::unique_ptr<std::byte, void (*)(void *)>> arenas;
  std::vector<std::byte> workspaceStorage;
  std::vector<std::pair<std::string, std::vector<BoundStep>>> programs;

  friend class StepBinder;
};

} // namespace megatron::runtime

#endif // MEGATRON_RUNTIME_ENGINE_ENGINE_H
