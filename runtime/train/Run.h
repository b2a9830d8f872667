//===- Run.h - One rank's training loop of megatron-run ----------*- C++ -*-===//
//
// Private to runtime/train. Trainer.cpp sets a run up (the plan, the launcher, the ranks' worlds and devices) and
// starts one Run per rank; a Run is that rank's whole training loop, in four files by concern: Run.cpp (setting up
// and the loop itself), RunIteration.cpp (an iteration's micro-batches, the pipeline schedule and evaluation),
// RunOptimizer.cpp (the gradient norm, loss scaling, clipping and AdamW, on the CPU, distributed or on the device)
// and RunReport.cpp (the log lines and the memory report). MLIR-free.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_RUN_H
#define MEGATRON_RUNTIME_TRAIN_RUN_H

#include "Compute.h"
#include "DeviceCompute.h"
#include "LossCurve.h"
#include "LossScaler.h"
#include "TrainState.h"
#include "Trainer.h"

#include "runtime/comm/Communicator.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/data/BatchSource.h"
#include "runtime/device/ReplicaChunk.h"
#include "runtime/engine/Engine.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace megatron::train {

using Clock = std::chrono::steady_clock;

inline double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// `value` with 4 decimals.
inline std::string fixed(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", value);
  return text;
}

inline std::string mebibytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", bytes / 1048576.0);
  return text;
}

/// The most memory this process has held (VmHWM), in bytes: the measured peak beside the planned one.
int64_t peakResidentBytes();

/// Fails early, before any training, when --save cannot be written: an error an hour into a job is the one users
/// hate most.
std::string checkSaveDirectory(const std::string &dir);

/// The micro-batch inputs of a GPT plan and how the built-in corpus fills them.
struct GptInputs {
  int tokens = -1, labels = -1, lossMask = -1;
};


/// The inputs of `plan`, or why the built-in corpus cannot feed it.
std::string findGptInputs(const plan::Plan &plan, GptInputs &inputs);

/// What the ranks of a run share: set up before they start, read-only while they run (except `progressShown`,
/// which only rank 0 writes, and the main thread reads after the ranks are joined).
struct Shared {
  const TrainOptions &opts;
  std::vector<plan::Plan> plans; // one per pipeline stage
  GptInputs inputs;
  int tensor = 1;         // tensor-parallel ranks
  int data = 1;           // data-parallel ranks (replicas of each tensor-parallel rank)
  int pipeline = 1;       // pipeline stages
  int ranks = 1;          // all of them: tensor x data x pipeline (threads, or processes under a launcher)
  int threadsPerRank = 1; // OpenMP threads of each
  std::string launcher;   // "mpirun" or "srun" when the ranks are processes; empty for threads
  // --device cuda: what runs the programs, one backend per rank of this process (ranks as threads: all of them, on
  // one device; as processes: this one's); empty: the CPU. `deviceWorld` says how the ranks' devices communicate.
  std::vector<std::unique_ptr<device::DeviceBackend>> backends;
  std::string deviceWorld;
  bool showProgress = false;
  bool progressShown = false;
};

/// One rank's communicators over one world (null stands for one rank): the tensor-parallel group, the data-parallel
/// group (this tp rank's replicas), the pipeline group (rank = stage), and the stages holding the tied embedding
/// (on those stages; else null). A device run has two sets: the host world's, for the loop's own sums and the
/// checkpoints in host memory, and the device world's, for the device engine's collectives on device memory.
struct Groups {
  std::unique_ptr<comm::Communicator> tp, dp, pp, embedding;
};


/// One rank's training loop: a full SPMD copy of the loop with its own engine over its shards and its own data
/// loaders. The ranks of a tensor-parallel group see the same batches; the data-parallel replicas each run their
/// share of the iteration's micro-batches. Rank 0 of the world alone prints, logs and writes files; collectives
/// keep the ranks in step.
class Run {
public:
  /// `host`: the rank's groups on the host world (null: one rank). A device run's `backend` runs the programs, with
  /// the rank's groups on the device world `onDevice` (null: one rank); without a backend the CPU engine runs them.
  Run(Shared &shared, const Groups *host, const Groups *onDevice = nullptr, device::DeviceBackend *backend = nullptr)
      : opts(shared.opts), shared(shared), group(host ? host->tp.get() : nullptr),
        replicas(host ? host->dp.get() : nullptr), stages(host ? host->pp.get() : nullptr),
        embedding(host ? host->embedding.get() : nullptr), onDevice(onDevice), backend(backend),
        dpRank(replicas ? replicas->rank() : 0), dpSize(replicas ? replicas->size() : 1),
        stage(stages ? stages->rank() : 0), leader((!group || group->rank() == 0) && dpRank == 0 && stage == 0) {}
  /// Returns "" or the error (the caller prints it).
  std::string main();

private:
  std::string setUp();
  /// Whether an earlier pipeline stage also holds parameter `name` (the output layer's copy of a tied embedding).
  bool heldByEarlierStage(const std::string &name) const { return earlierStageParams.count(name) != 0; }
  std::set<std::string> earlierStageParams; // the parameters of the stages before this one
  std::string trainIteration(int64_t iteration, double &loss, double &gradNorm);
  /// The step after the iteration's micro-batches (RunOptimizer.cpp).
  std::string optimizerStep(int64_t iteration, double &gradNorm);
  /// Runs this stage's pipeline schedule over the replica's micro-batches; `sum` gets their losses (last stage).
  std::string runPipelineSchedule(int64_t iteration, uint64_t first, double &sum);
  /// Adds `sum` over the pipeline stages (only the last holds losses): every stage gets the total.
  std::string shareOverStages(double &sum);
  std::string evaluate(double &loss);
  /// This stage's line of the memory report: what the plan predicts, and the peak measured while running.
  void reportMemory();
  /// The batch into the host engine's inputs, and from there to the compute.
  std::string feed(const data::GptBatch &batch);
  /// The loss of the last run of `name`, added to `sum`.
  std::string addLoss(const std::string &name, double &sum);
  void log(int64_t iteration, double loss, double gradNorm, double lr, double seconds, double commSeconds,
           int64_t iterations);
  void progress(int64_t iteration, double loss);
  /// `before` + the entropy floor + `after`, or nothing where the floor is unknown (real text).
  std::string floorText(const char *before, const char *after) const {
    return floor >= 0 ? before + fixed(floor) + after : std::string();
  }
  std::string gradientNorm(double &norm);
  /// The distributed optimizer's chunk of this replica; `counted`: per parameter, the runs of its gradient this rank
  /// counts in the norm.
  std::string setUpDistributedOptimizer(const std::vector<device::Runs> &counted);
  /// The optimizer step of a device run: unscale, norm, skip or clip, AdamW, all on the device.
  std::string deviceOptimizerStep(int64_t iteration, double &gradNorm);
  std::string distributedOptimizerStep(int64_t iteration, double &gradNorm);

  const TrainOptions &opts;
  Shared &shared;
  comm::Communicator *group;    // the tensor-parallel group; null for one rank
  comm::Communicator *replicas; // the data-parallel group (this tp rank's replicas); null for one rank
  comm::Communicator *stages;   // the pipeline group (rank = stage); null for one stage
  comm::Communicator *embedding; // the stages holding the tied embedding, on those stages; else null
  const Groups *onDevice;          // a device run's groups on the device world; null for one rank or the CPU
  device::DeviceBackend *backend;  // a device run's backend; null on the CPU
  int dpRank, dpSize, stage;
  bool leader; // rank 0 of the world: prints, logs, writes files
  // Pipeline: the most stash slots held at once over the iterations (the activations measured).
  int64_t peakSlotsHeld = 0;
  // The plan's buffers on the host: the whole run on the CPU, or the host's view of a device run's (Compute.h).
  std::unique_ptr<runtime::Engine> engine;
  std::unique_ptr<Compute> compute; // what runs the programs: hostCompute(*engine), or `device`
  DeviceCompute *device = nullptr;  // --device cuda: the compute, on `backend`
  /// Whether the communication time is shown: with several ranks (one rank's collectives are copies or nothing).
  bool timesCommunication() const { return shared.ranks > 1; }
  /// Seconds this rank has spent in its programs' collectives and pipeline messages so far: the CPU engine's clock,
  /// or the markers the device recorded around them (read where the device is idle, between iterations).
  std::string communicationSeconds(double &seconds) {
    if (device)
      return device->communicationSeconds(seconds);
    seconds = engine->communicationSeconds();
    return {};
  }
  /// The device compute with this rank's device groups and its share of the norm (`counted`: per parameter, the
  /// runs of its gradient this rank counts).
  std::string createDeviceCompute(const std::vector<std::vector<std::pair<int64_t, int64_t>>> &counted);
  GptInputs inputs;
  std::unique_ptr<data::BatchSource> train, validation;
  /// The split's source: the built-in corpus, or Megatron's datasets (--data-path) sized for `samples`.
  std::unique_ptr<data::BatchSource> makeSource(data::Split split, int64_t samples, std::string &error) const;
  // The iteration's micro-batches (the plan's, global) and this data-parallel rank's share of them: global
  // micro-batches [dpRank * microBatches, (dpRank + 1) * microBatches).
  int64_t globalMicroBatches = 1, microBatches = 1, microBatchSize = 1, batchTokens = 0, startIteration = 0;
  double floor = 0;
  std::vector<float *> grads;    // every parameter's gradient, for clipping
  std::vector<cpu::Index> sizes; // their element counts
  std::vector<const float *> ownedGrads; // the pieces of the gradients this rank owns, for the norm
  std::vector<cpu::Index> ownedSizes;
  bool hasFinalizeGrads = false;
  LossCurve curve;
  // Mixed precision: the loss scaler of an fp16 plan (or of --loss-scale), and the steps it skipped, whose
  // iterations advance neither AdamW's step count nor the learning rate (as in Megatron).
  std::unique_ptr<LossScaler> scaler;
  int64_t skippedIterations = 0, intervalSkipped = 0;
  /// The learning rate of `iteration` (1-based): the schedule at the number of steps taken before it.
  double lrAt(int64_t iteration) const { return opts.schedule.at(iteration - 1 - skippedIterations); }
  /// With a loss scaler, after the global norm of the unscaled gradients: a non-finite norm means an inf or NaN
  /// in some gradient (every element's square is in it, and every rank has the same norm), and Megatron skips
  /// the step. Updates the scaler; true (and gradNorm NaN) when the step is skipped.
  bool skipOverflow(double &gradNorm);

  // The distributed optimizer (ZeRO-1, plan.parallel.distributed_optimizer). The gradients and parameters arenas,
  // laid out alike, are seen as one flat f32 buffer padded to dpSize chunks of `chunk`
  // (plan::distributedOptimizerChunk; the engine allocates the padding, Plan::allocatedBytes): this replica
  // reduce-scatters the gradients in place, updates chunk dpRank = flat
  // [lo, hi) and all-gathers the parameters. AdamW's moments are the plan's optimizer_shard: the chunk's only
  // (element i is flat element dpRank * chunk + i); a checkpoint gathers them whole and a load scatters them.
  bool distributed = false;
  int64_t chunk = 0, lo = 0, hi = 0;
  float *shardExpAvg = nullptr, *shardExpAvgSq = nullptr; // the optimizer_shard's buffers
  float *flatGrads = nullptr, *flatParams = nullptr; // the arenas, dpSize * chunk floats each
  struct Piece {           // a parameter's part of this replica's chunk
    float *value, *expAvg, *expAvgSq;
    int64_t flat, length; // where its gradient lies in the flat gradients
    bool decay;
  };
  std::vector<Piece> pieces;
  std::vector<std::pair<int64_t, int64_t>> normRuns; // flat runs of the chunk this rank owns for the norm
  std::vector<float> wholeExpAvg, wholeExpAvgSq;     // the moments whole, only while saving or loading
  std::string gatherOptimizerState(FlatMoments &whole);
  void scatterOptimizerState();
};

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_RUN_H
