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
#include "runtime/comm/Communicator.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron::runtime {

/// What changes between runs of a program.
struct RunContext {
  bool training = true;          // dropout on (train_step) or off (evaluation)
  std::uint64_t dropoutSeed = 0; // the seed of this micro-batch's dropout masks (see dropoutSeedFor)
  /// Pipeline parallelism: the micro-batch (within the replica's iteration) whose messages send and recv steps
  /// exchange, and which of the stage's stash slots (0 .. pipeline.stashSlots - 1) the program uses.
  std::int64_t microBatch = 0;
  int stashSlot = 0;
  /// fp16 training: the loss seed (the fill marked loss_seed) is multiplied by this, so that small gradients
  /// stay above fp16's smallest values; the trainer divides the gradients by it again (docs/precision.md).
  double lossScale = 1.0;
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
  /// Allocates the plan's arenas and binds its programs for this rank of the plan's tensor-parallel group, whose
  /// communicator is `tensorGroup` (the rank is tensorGroup->rank()), and of its data-parallel group `dataGroup`.
  /// The plan's parallel.tensor must equal the tp group's size and parallel.data the dp group's; null stands for a
  /// single rank and then needs 1. Steps with `group: "tp"` run over `tensorGroup`, steps with `group: "dp"` (the
  /// all_reduce_grads of data parallelism) over `dataGroup`. The sub-groups that all_reduce_grads steps with a
  /// group_size need are split off `tensorGroup` here, collectively: every rank of the group must create its
  /// engine for the same plan at the same time. Fails (with a message) on a step it cannot execute or a layout
  /// that does not match.
  /// Under pipeline parallelism, `pipelineGroup` holds the plan's pipeline stages (rank = stage): the send and
  /// recv steps exchange boundary values with the stage running the peer chunk. `embeddingGroup` is the stages
  /// holding a tied parameter (first and last), over which the steps with `group: "embedding"` sum gradients;
  /// null on the other stages.
  static std::unique_ptr<Engine> create(plan::Plan plan, std::string &error,
                                        comm::Communicator *tensorGroup = nullptr,
                                        comm::Communicator *dataGroup = nullptr,
                                        comm::Communicator *pipelineGroup = nullptr,
                                        comm::Communicator *embeddingGroup = nullptr);
  /// For testing kernels on hand-written plans: rank `rank` of a group without a communicator. The steps that see
  /// a shard use the rank; the collective steps work only when tpSize is 1 (then they copy), and the
  /// vocab_parallel cross-entropy reduces through `allReduce`, which the caller sets. parallel.tensor is not
  /// checked. Fails on a rank outside [0, tpSize).
  static std::unique_ptr<Engine> create(plan::Plan plan, std::string &error, ParallelRank rank);
  ~Engine();

  const plan::Plan &plan() const { return planValue; }
  const ParallelRank &parallelRank() const { return rank; }
  /// The tensor-parallel group's communicator, or null (a single rank, or the ParallelRank form of create).
  comm::Communicator *tensorGroup() const { return tpGroup; }
  /// The data-parallel group's communicator (the replicas of this tensor-parallel rank), or null (one replica).
  comm::Communicator *dataGroup() const { return dpGroup; }
  /// The pipeline group (rank = stage), or null (one stage).
  comm::Communicator *pipelineGroup() const { return ppGroup; }

  /// The tensor-parallel group's all-reduce that the vocab_parallel cross-entropy calls (looked up when the step
  /// runs). create with a communicator sets it to the communicator's allReduce; with a ParallelRank the caller
  /// sets it, and null means a single rank, where such a step fails unless tpSize is 1.
  AllReduceFn allReduce;

  /// The bytes of buffer `id`. Handing out a parameter's bytes counts as changing them (weightsChanged).
  void *data(int id);
  template <typename T> T *as(int id) { return static_cast<T *>(data(id)); }
  const plan::Buffer &buffer(int id) const { return planValue.buffers[id]; }

  /// Runs program `name` (with the stash slot `context.stashSlot` of its chunk, for the halves of a pipeline
  /// chunk's training step). Returns an empty string, or an error naming the step, its module and the problem
  /// (a token id outside the vocabulary, a label outside the logits, a collective that failed: "step 41 of
  /// train_step (all_gather at 'decoder.layers.0.mlp.linear_fc1'): rank 1 of group "tp" ... failed (...)").
  /// With a tensor- or data-parallel group, a failed step aborts it, so that no peer waits for this rank.
  std::string run(const std::string &name, const RunContext &context);
  /// Runs only step `index` of program `name`, as run() would in its turn (16-bit outputs rounded). For tests that
  /// check another backend step by step against this one (test/unit/cuda/sim): they copy a step's inputs, run it
  /// here, and compare. Unlike run(), a failure does not abort the communicators' groups.
  std::string runStep(const std::string &name, std::size_t index, const RunContext &context);

  /// The parameters changed (initialised, loaded, stepped by an optimizer): the next run() first refreshes the
  /// programs' 16-bit copies of them with the plan's cast_weights program (mixed precision; nothing without one).
  /// data() and arenaData() of a parameter call it, so a writer through those is covered; a writer that keeps a
  /// pointer across iterations (the distributed optimizer's flat view) calls it after each write.
  void weightsChanged() { weightsFresh = false; }
  /// Runs cast_weights now if the copies are stale, as run() and runStep() do first; "" or the error. For
  /// callers that read the copies before running a step (a step-by-step comparison uploads its inputs first).
  std::string refreshWeights(const RunContext &context = {});

  /// Zeroes a whole arena (the gradients before an iteration's first micro-batch).
  void zero(plan::Arena arena);
  /// The first byte of an arena (plan.arenaBytes of them, the plan's offsets from here): the distributed optimizer
  /// treats the gradients and parameters as flat buffers.
  std::byte *arenaData(plan::Arena arena) {
    if (arena == plan::Arena::Params)
      weightsChanged();
    return arenas[static_cast<int>(arena)].get();
  }

  /// The loss the last run of `name` left in its loss buffer.
  double loss(const std::string &name);

  /// The bytes of one stash slot (the activations one micro-batch keeps between a chunk's forward and backward).
  std::int64_t stashSlotBytes() const {
    return planValue.arenaBytes[static_cast<int>(plan::Arena::Stash)] * storageScale[static_cast<int>(plan::Arena::Stash)];
  }

  /// How a buffer is stored here: the CPU backend keeps bf16 and f16 buffers as f32 holding values rounded to the
  /// 16-bit format (mixed-precision emulation), so their storage type is f32; other buffers are stored as planned.
  static plan::DType storageType(plan::DType planned) {
    return planned == plan::DType::BF16 || planned == plan::DType::F16 ? plan::DType::F32 : planned;
  }

  /// Bytes the engine allocated: the plan's arenas plus kernel workspace.
  std::int64_t allocatedBytes() const;

  /// Wall-clock seconds this rank has spent inside collectives (collective steps and the vocab-parallel loss's
  /// all-reduces) since it was created: from entering a collective to leaving it, so the time spent waiting for
  /// the slowest rank counts too. What tensor parallelism costs in communication, measured.
  double communicationSeconds() const { return commSeconds; }

  struct BoundStep {
    std::function<std::string(const RunContext &)> run;
  };

private:
  Engine() = default;
  static std::unique_ptr<Engine> createImpl(plan::Plan plan, std::string &error, ParallelRank rank,
                                            comm::Communicator *tensorGroup, comm::Communicator *dataGroup,
                                            comm::Communicator *pipelineGroup = nullptr,
                                            comm::Communicator *embeddingGroup = nullptr);
  /// The communicator over blocks of `groupSize` consecutive ranks of the tensor-parallel group (the group itself
  /// when groupSize is its size), or null when there is none.
  comm::Communicator *subGroup(std::int64_t groupSize) const;
  /// Makes `bound` round the step's bf16 and f16 outputs after it runs (the emulation of 16-bit storage).
  void roundSixteenBitOutputs(const plan::Step &step, BoundStep &bound);

  plan::Plan planValue;
  ParallelRank rank;
  comm::Communicator *tpGroup = nullptr;
  comm::Communicator *dpGroup = nullptr;
  comm::Communicator *ppGroup = nullptr;
  comm::Communicator *embGroup = nullptr;
  double commSeconds = 0.0;
  bool weightsFresh = false; // the weights arena holds the current parameters' 16-bit copies
  // While binding: the stash slot (over all chunks) that Stash buffers resolve to, and the program's chunk.
  std::int64_t bindingSlot = 0;
  int bindingChunk = -1;
  std::map<std::int64_t, std::unique_ptr<comm::Communicator>> subGroups; // by group_size
  std::vector<std::unique_ptr<std::byte, void (*)(void *)>> arenas;
  /// Per arena, 2 where it holds 16-bit buffers stored as f32 (every offset and size doubles, which keeps the
  /// planned layout's disjointness), else 1.
  std::int64_t storageScale[plan::kNumArenas] = {};
  std::vector<std::byte> workspaceStorage;
  struct BoundProgram {
    std::string name;
    int slot = -1; // the stash slot it is bound to; -1 for a program that does not touch the stash (any slot)
    std::vector<BoundStep> steps;
  };
  std::vector<BoundProgram> programs;
  /// The binding of program `name` for the context's stash slot, or null.
  BoundProgram *boundProgram(const std::string &name, const RunContext &context);

  friend class StepBinder;
};

} // namespace megatron::runtime

#endif // MEGATRON_RUNTIME_ENGINE_ENGINE_H
