//===- Plan.h - The compiled plan that megatron-run executes ----*- C++ -*-===//
//
// A plan is everything the runtime needs and nothing it must work out: every buffer with its arena, offset and
// size (from the memory planner), every parameter with its init and gradient buffer, and programs that are flat
// lists of kernel calls on buffers. The compiler writes it as versioned JSON (docs/plan.md); the runtime reads it
// without MLIR. Plain C++ with no MLIR, LLVM or JSON types.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_PLAN_PLAN_H
#define MEGATRON_PLAN_PLAN_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace megatron::plan {

/// The format written and the only one read; a plan of another version is refused with a clear message.
inline constexpr int kPlanVersion = 4;
inline constexpr const char *kPlanFormat = "megatron-plan";

enum class DType { F32, F64, BF16, F16, I32, I64 };
const char *toString(DType type);
std::optional<DType> parseDType(const std::string &name);
int64_t bytesOf(DType type);

/// Where a buffer lives. Persistent arenas keep their contents across steps; `activations` is reused by every
/// program, laid out by the memory planner. `stash` (pipeline parallelism) holds what a chunk's forward leaves for
/// its backward: arenaBytes[Stash] is one slot, and the runtime keeps PipelineInfo::stashSlots of them, one per
/// micro-batch (and chunk) in flight. `weights` (mixed precision) holds one 16-bit copy of each parameter that the
/// programs compute with: the plan's `cast_weights` program writes them from the f32 parameters, and the engines
/// run it before any program that follows a change of the parameters (as Megatron keeps its bf16 model weights
/// beside the fp32 main weights), instead of every micro-batch casting them again and keeping its own copy.
enum class Arena { Inputs, Params, Grads, Optimizer, Activations, Stash, Weights };
inline constexpr int kNumArenas = 7;
const char *toString(Arena arena);
std::optional<Arena> parseArena(const std::string &name);

struct Buffer {
  Arena arena = Arena::Activations;
  int64_t offset = 0; // bytes from the arena's start, a multiple of kAlignment
  int64_t bytes = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numElements() const;
};

/// Buffers start on cache-line (and AVX-512) boundaries.
inline constexpr int64_t kAlignment = 64;

using AttrValue = std::variant<int64_t, double, bool, std::string>;

/// One kernel call. `accumulate` marks outputs that the kernel adds into (a parameter's gradient buffer) rather
/// than overwrites; the compiler zeroes an accumulating output that is not a gradient buffer with a `zero` step.
struct Step {
  std::string op;
  std::string loc; // the module the op belongs to, e.g. "decoder.layers.3.mlp.linear_fc1"
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::vector<bool> accumulate; // one per output
  std::map<std::string, AttrValue> attrs;
};

struct Program {
  std::string name; // "train_step" (forward + backward + gradients), "forward" (evaluation), "logits"
                    // (generation), "finalize_grads" (after an iteration's last micro-batch) or "cast_weights"
                    // (the 16-bit copies of the parameters from the f32 ones, see Arena); under pipeline
                    // parallelism "train_forward_chunk<c>" / "train_backward_chunk<c>" (the halves of a training
                    // step), "forward_chunk<c>" and "logits_chunk<c>" for model chunk c
  int chunk = -1;         // pipeline: this stage's local chunk whose stash slots the program reads or writes
  int loss = -1;          // the buffer holding the scalar loss after the program ran
  int64_t peakActivationBytes = 0; // the largest sum of live activation bytes at any step (a lower bound)
  std::vector<Step> steps;
};

enum class InitKind { Normal, Zeros, Ones };

/// Which indices of one dimension of a parameter each tensor-parallel rank holds (mt.param's #mt.shard).
struct ParamShard {
  int dim = -1; ///< -1: every rank holds the whole parameter
  /// Per rank, (start, length) spans of `dim`, concatenated in order in the rank's buffer.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> spans;
  bool isSharded() const { return dim >= 0; }
};

struct Param {
  std::string name;
  int64_t index = 0;          // its place among the whole model's parameters (all pipeline stages): its random
                              // stream, so that every layout initialises it alike
  std::vector<int64_t> shape; // the whole parameter's; its buffers hold this rank's shard of it
  ParamShard shard;
  int buffer = -1;
  int grad = -1;
  InitKind init = InitKind::Normal;
  double initStd = 0.0;   // the effective standard deviation (scaled init already applied)
  bool weightDecay = true; // Megatron: no decay on biases and norm weights
  int expAvg = -1;        // AdamW's first and second moments; -1 under the distributed optimizer, whose moments
  int expAvgSq = -1;      // are the flat Plan::optimizerShard instead
};

struct Input {
  std::string name; // "tokens", "labels", "loss_mask", ...
  int buffer = -1;
};

struct ModelInfo {
  std::string family;      // gpt, bert, t5
  std::string fingerprint; // of the parameters' names, shapes and inits: what a checkpoint must match
  int64_t numMicroBatches = 1;
  uint64_t parameters = 0;
  uint64_t forwardFlopsPerMicroBatch = 0;
};

/// The parallel layout the plan was compiled for: every one of `tensor` ranks runs the same plan on its shard, and
/// `data` replicas of that group each run model.numMicroBatches / data of an iteration's micro-batches.
struct ParallelInfo {
  int64_t tensor = 1;
  bool sequence = false;
  int64_t data = 1;
  bool distributedOptimizer = false; // ZeRO-1: finalize_grads leaves the data-parallel sums to the optimizer
};

/// The elements of the flat gradients arena (gradsArenaBytes / 4, f32, alignment padding included) that one of
/// `dataParallel` replicas updates under the distributed optimizer: ceil(elements / dataParallel). The compiler
/// sizes the sharded moments with it and the runtime chunks its reduce-scatter with it, so both agree.
int64_t distributedOptimizerChunk(int64_t gradsArenaBytes, int64_t dataParallel);

/// AdamW's moments under the distributed optimizer (ZeRO-1): two flat f32 buffers in the Optimizer arena, each of
/// the replica's chunk of the flat gradients arena (distributedOptimizerChunk elements). Element i is the moment of
/// flat gradient element dpRank * elements + i.
struct OptimizerShard {
  int expAvg = -1;
  int expAvgSq = -1;
  int64_t elements = 0;
};

/// One pass of one micro-batch through one of the stage's model chunks (`chunk` is the local index v; the model
/// chunk is v·stages + stage).
struct PipelineStep {
  bool forward = true;
  int64_t microBatch = 0;
  int64_t chunk = 0;
};

/// A pipeline stage's place and its schedule, which the compiler made (1F1B, or interleaved 1F1B with
/// virtualStages > 1) and the runtime executes in order.
struct PipelineInfo {
  int64_t stages = 1;
  int64_t virtualStages = 1;
  int64_t stage = 0;        // this plan's pipeline rank
  int64_t microBatches = 1; // per data-parallel replica and iteration
  std::vector<PipelineStep> schedule;
  /// The most (micro-batch, chunk) stashes alive at once under the schedule: the slots, shared by the chunks, that
  /// the runtime allocates. 1F1B holds p - stage on a stage; the interleaved schedule more (Korthikanti et al.).
  int64_t stashSlots = 0;
  /// The model chunk that local chunk v is: v·stages + stage.
  int64_t globalChunk(int64_t v) const { return v * stages + stage; }
  int64_t numChunks() const { return stages * virtualStages; }
  /// The program a schedule entry runs: train_forward_chunk<c> or train_backward_chunk<c>, c its model chunk.
  std::string trainingProgram(const PipelineStep &step) const {
    return (step.forward ? "train_forward_chunk" : "train_backward_chunk") + std::to_string(globalChunk(step.chunk));
  }
};

/// The stash slots of a stage's (local chunk, micro-batch) pairs in flight while its schedule runs: a forward takes
/// the lowest free slot of the pipeline's stashSlots, and its backward uses that slot and then gives it back.
class StashSlots {
public:
  explicit StashSlots(const PipelineInfo &pipeline)
      : inUse(static_cast<size_t>(pipeline.stashSlots > 1 ? pipeline.stashSlots : 1), false) {}
  /// The slot `step` runs on: a forward takes a free one, a backward gets its forward's. -1 when no slot is free
  /// (the schedule holds more than the plan provides) or the backward's forward took none.
  int acquire(const PipelineStep &step);
  /// After `step`, a backward, ran: its slot is free again.
  void release(const PipelineStep &step);
  /// The most slots held at once so far.
  int64_t peak() const { return peakHeld; }

private:
  std::vector<bool> inUse;
  std::map<std::pair<int64_t, int64_t>, int> slotOf; // (local chunk, micro-batch) -> slot
  int64_t held = 0, peakHeld = 0;
};

struct Plan {
  ModelInfo model;
  ParallelInfo parallel;
  PipelineInfo pipeline;
  /// Present iff parallel.distributedOptimizer; then every parameter's expAvg and expAvgSq are -1.
  std::optional<OptimizerShard> optimizerShard;
  std::vector<Input> inputs;
  std::vector<Param> params;
  std::vector<Buffer> buffers;
  int64_t arenaBytes[kNumArenas] = {};
  std::vector<Program> programs;

  const Program *program(const std::string &name) const;
  /// Whether this stage's finalize_grads sums a tied embedding's gradient over the "embedding" group (the first
  /// and the last pipeline stage of a model whose output layer shares the word embeddings).
  bool sumsTiedEmbedding() const;
  /// The bytes the runtime allocates for `arena`: arenaBytes, except for the stash (one slot per micro-batch in
  /// flight, pipeline.stashSlots of them) and, under the distributed optimizer, the params and grads arenas,
  /// padded to parallel.data chunks of optimizerShard.elements floats so that the reduce-scatter of the gradients
  /// and the all-gather of the parameters run in place.
  int64_t allocatedBytes(Arena arena) const;
  /// The bytes the runtime allocates for all the arenas: one rank's memory, bar kernel workspace.
  int64_t totalBytes() const;
};

/// FNV-1a (64 bits) of `text` as 16 hex digits: the fingerprints of plans and models. It detects mismatched or
/// damaged files; it is not a security measure.
std::string fingerprintText(const std::string &text);

/// The plan as JSON text, with its fingerprint computed over everything else.
std::string toJson(const Plan &plan);
/// The fingerprint that toJson records: a hash of the plan's content.
std::string fingerprintOf(const Plan &plan);

/// Reads and checks a plan file: the format name and version, every buffer inside its arena, every buffer id and
/// dtype a step or parameter names. Returns std::nullopt and sets `error` (naming the file and the problem).
std::optional<Plan> readPlan(const std::string &path, std::string &error);
std::optional<Plan> parsePlan(const std::string &json, const std::string &path, std::string &error);

/// The plans of a model split into pipeline stages, one per stage, in one file: {"format", "version",
/// "pipeline_stages": [plan, ...]}. A plan of one stage is written as that plan alone (toJson).
std::string toJson(const std::vector<Plan> &stages);
/// Reads either form: a plan alone gives one stage. Checks that the stages agree (model, layout, count).
std::optional<std::vector<Plan>> readPlanStages(const std::string &path, std::string &error);
std::optional<std::vector<Plan>> parsePlanStages(const std::string &json, const std::string &path,
                                                 std::string &error);

} // namespace megatron::plan

#endif // MEGATRON_PLAN_PLAN_H
