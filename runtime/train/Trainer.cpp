//===- Trainer.cpp - The training loop of megatron-run ---------------------===//

#include "Trainer.h"

#include "Compute.h"
#include "DeviceCompute.h"
#include "Generate.h"
#include "LossCurve.h"
#include "Shards.h"
#include "TrainState.h"

#include "megatron/Support/AtomicFile.h"
#include "runtime/comm/Launch.h"
#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/data/BatchSource.h"
#include "runtime/device/ReplicaChunk.h"
#include "runtime/device/SameDeviceCommunicator.h"
#include "runtime/engine/Engine.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace megatron::train {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// The most memory this process has held (VmHWM), in bytes: the measured peak beside the planned one.
int64_t peakResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stoll(line.substr(6)) * 1024;
  return 0;
}

/// `value` with 4 decimals.
std::string fixed(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", value);
  return text;
}

std::string mebibytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", bytes / 1048576.0);
  return text;
}

/// Fails early, before any training, when --save cannot be written: an error an hour into a job is the one users
/// hate most.
std::string checkSaveDirectory(const std::string &dir) {
  ::mkdir(dir.c_str(), 0777);
  std::string probe = dir + "/.megatron-write-test";
  if (std::string error = writeFileAtomically(probe, "ok\n"); !error.empty())
    return "--save: the directory '" + dir + "' is not writable: " + error;
  ::unlink(probe.c_str());
  return {};
}

/// The micro-batch inputs of a GPT plan and how the built-in corpus fills them.
struct GptInputs {
  int tokens = -1, labels = -1, lossMask = -1;
};

std::string findGptInputs(const plan::Plan &plan, GptInputs &inputs) {
  for (const plan::Input &in : plan.inputs) {
    if (in.name == "tokens")
      inputs.tokens = in.buffer;
    else if (in.name == "labels")
      inputs.labels = in.buffer;
    else if (in.name == "loss_mask")
      inputs.lossMask = in.buffer;
    else
      return "the built-in corpus feeds GPT models (inputs tokens, labels, loss_mask); this plan also needs '" +
             in.name + "' (a " + plan.model.family + " model)";
  }
  if (inputs.tokens < 0 || inputs.labels < 0 || inputs.lossMask < 0)
    return "the plan lacks one of the inputs tokens, labels, loss_mask";
  return {};
}

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


/// World rank `rank`'s groups split off `world`, in Megatron's order, tensor-parallel fastest, pipeline slowest:
/// world rank w is tensor-parallel rank w % T of data-parallel rank (w / T) % D of pipeline stage w / (T·D); a tp
/// group is T consecutive ranks, a dp group the ranks of one stage with the same tp rank, a pipeline group the
/// ranks with the same tp and dp ranks. Collective over `world`. "" or the error.
std::string splitGroups(comm::Communicator &world, int rank, const Shared &shared, Groups &groups) {
  std::string error;
  const int tensor = shared.tensor, perStage = shared.tensor * shared.data;
  const int stage = rank / perStage, inStage = rank % perStage;
  if (!(groups.tp = world.split(rank / tensor, rank % tensor, "tp", error)))
    return "creating the tensor-parallel group: " + error;
  if (!(groups.dp = world.split(stage * tensor + inStage % tensor, inStage / tensor, "dp", error)))
    return "creating the data-parallel group: " + error;
  if (shared.pipeline == 1)
    return {};
  if (!(groups.pp = world.split(inStage, stage, "pp", error)))
    return "creating the pipeline group: " + error;
  groups.embedding = groups.pp->split(shared.plans[static_cast<size_t>(stage)].sumsTiedEmbedding() ? 0 : -1, stage,
                                      "embedding", error);
  if (!groups.embedding && !error.empty())
    return "creating the embedding group: " + error;
  return {};
}

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
  // Pipeline: the stash slots in use per local chunk, and the most in use at once (the activations measured).
  std::vector<bool> slotsInUse;
  int64_t slotsHeld = 0, peakSlotsHeld = 0;
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

std::unique_ptr<data::BatchSource> Run::makeSource(data::Split split, int64_t samples, std::string &error) const {
  const std::vector<int64_t> &shape = engine->buffer(inputs.tokens).shape;
  if (opts.dataPath.empty())
    return data::builtinCorpus(data::GptBatchLoaderOptions{opts.seed, split, shape[1], shape[0]});
  data::DatasetOptions options;
  // Megatron's --data-path: one prefix, or weight and prefix pairs.
  if (opts.dataPath.size() == 1) {
    options.prefixes = opts.dataPath;
  } else {
    for (size_t i = 0; i + 1 < opts.dataPath.size(); i += 2) {
      char *end = nullptr;
      double weight = std::strtod(opts.dataPath[i].c_str(), &end);
      if (opts.dataPath.size() % 2 != 0 || end == opts.dataPath[i].c_str() || *end != '\0') {
        error = "--data-path: give one prefix, or weight and prefix pairs (e.g. 0.3 wiki_text_document 0.7 "
                "books_text_document); '" + opts.dataPath[i] + "' is not a weight";
        return nullptr;
      }
      options.weights.push_back(weight);
      options.prefixes.push_back(opts.dataPath[i + 1]);
    }
  }
  options.split = opts.split;
  options.which = split;
  options.seqLength = shape[1];
  options.microBatchSize = shape[0];
  options.seed = opts.seed;
  options.samples = samples;
  options.vocabFile = opts.vocabFile;
  options.mergeFile = opts.mergeFile;
  options.cachePath = opts.dataCachePath;
  return data::indexedCorpus(options, error);
}

std::string Run::setUp() {
  std::string error;
  for (int s = 0; s < stage; ++s)
    for (const plan::Param &p : shared.plans[static_cast<size_t>(s)].params)
      earlierStageParams.insert(p.name);
  engine = runtime::Engine::create(shared.plans[static_cast<size_t>(stage)], error, group, replicas, stages,
                                   embedding);
  if (!engine)
    return "plan '" + opts.plan + "': " + error;
  // Each pipeline stage's plan numbers its buffers its own way.
  if (std::string problem = findGptInputs(engine->plan(), inputs); !problem.empty())
    return "plan '" + opts.plan + "': " + problem;
  hasFinalizeGrads = engine->plan().program("finalize_grads") != nullptr;
  bool sixteenBit = false, fp16 = false;
  for (const plan::Buffer &b : engine->plan().buffers) {
    sixteenBit = sixteenBit || b.dtype == plan::DType::BF16 || b.dtype == plan::DType::F16;
    fp16 = fp16 || b.dtype == plan::DType::F16;
  }
  if (opts.lossScale.anyGiven && !sixteenBit)
    return "--loss-scale, --initial-loss-scale, --min-loss-scale, --loss-scale-window and --hysteresis are for "
           "fp16 and bf16 plans; plan '" + opts.plan + "' computes in f32 (compile it with --mt-mixed-precision)";
  // Megatron: dynamic scaling for fp16, a constant scale wherever --loss-scale is given, none for bf16.
  if (fp16 || opts.lossScale.constant)
    scaler = std::make_unique<LossScaler>(opts.lossScale);

  // The global gradient norm counts each element of the whole model once: the runs of each gradient this rank
  // owns (counted by the first replica only: gradientNorm, createDeviceCompute).
  const int rank = group ? group->rank() : 0;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> counted;
  for (const plan::Param &p : engine->plan().params) {
    float *grad = engine->as<float>(p.grad);
    cpu::Index n = engine->buffer(p.grad).numElements();
    grads.push_back(grad);
    sizes.push_back(n);
    counted.emplace_back();
    if (heldByEarlierStage(p.name))
      continue; // a tied parameter's copy: the norm counts it once, on the first stage holding it
    for (const ShardRun &run : ownedRuns(p, rank, n)) {
      ownedGrads.push_back(grad + run.local);
      ownedSizes.push_back(run.length);
      counted.back().push_back({run.local, run.length});
    }
  }
  if (backend) {
    if (std::string problem = createDeviceCompute(counted); !problem.empty())
      return "plan '" + opts.plan + "' on " + backend->describe() + ": " + problem;
  } else {
    compute = hostCompute(*engine);
  }
  const std::vector<int64_t> &shape = engine->buffer(inputs.tokens).shape;
  globalMicroBatches = engine->plan().model.numMicroBatches;
  microBatches = globalMicroBatches / dpSize;
  slotsInUse.assign(static_cast<size_t>(std::max<int64_t>(engine->plan().pipeline.stashSlots, 1)), false);
  microBatchSize = shape[0];
  batchTokens = shape[0] * shape[1] * globalMicroBatches;
  std::string dataError;
  // Megatron sizes the train split for every sample the run draws, the validation split for one evaluation
  // (this loop evaluates the same samples each time).
  train = makeSource(data::Split::Train, opts.trainIters * globalMicroBatches * microBatchSize, dataError);
  if (train)
    validation = makeSource(data::Split::Validation, opts.evalIters * globalMicroBatches * microBatchSize, dataError);
  if (!train || !validation)
    return dataError;
  if (leader)
    floor = opts.lossFloor >= 0 ? opts.lossFloor : std::isnan(train->floor()) ? -1.0 : train->floor();

  if (engine->plan().parallel.distributedOptimizer)
    if (std::string problem = setUpDistributedOptimizer(counted); !problem.empty())
      return "plan '" + opts.plan + "': " + problem;

  initializeParameters(*engine, opts.seed);
  if (!opts.load.empty()) {
    ResumeState state;
    bool found = false;
    // Under the distributed optimizer the checkpoint's whole moments are read into flat arrays, and this
    // replica keeps its chunk of them.
    FlatMoments whole;
    if (distributed) {
      wholeExpAvg.assign(static_cast<size_t>(dpSize * chunk), 0.0f);
      wholeExpAvgSq.assign(static_cast<size_t>(dpSize * chunk), 0.0f);
      whole = {wholeExpAvg.data(), wholeExpAvgSq.data()};
    }
    if (std::string problem = loadTrainingCheckpoint(*engine, opts.load, state, found, distributed ? &whole : nullptr);
        !problem.empty())
      return "--load: " + problem;
    if (distributed) {
      if (found)
        scatterOptimizerState();
      std::vector<float>().swap(wholeExpAvg);
      std::vector<float>().swap(wholeExpAvgSq);
    }
    if (found) {
      startIteration = state.iteration;
      train->restore(state.trainSamples);
      skippedIterations = state.runState.value("skipped_iterations", int64_t(0));
      if (scaler && state.runState.contains("grad_scaler"))
        if (std::string problem = scaler->restore(state.runState["grad_scaler"]); !problem.empty())
          return "--load: " + opts.load + ": " + problem;
      if (leader)
        std::printf("loaded checkpoint iteration %lld from %s\n", static_cast<long long>(startIteration),
                    opts.load.c_str());
    } else if (leader) {
      std::printf("no checkpoint in %s: starting from scratch\n", opts.load.c_str());
    }
  }
  // A device run trains its own copy of the parameters and moments: the initialised or loaded ones go up once.
  if (device)
    if (std::string problem = trainingStateToDevice(*compute, engine->plan()); !problem.empty())
      return problem;
  curve.floor = floor; // negative: unknown (real text)
  curve.title = engine->plan().model.family + ", " + std::to_string(engine->plan().model.parameters) +
                " parameters, built-in corpus";
  return {};
}

std::string Run::createDeviceCompute(const std::vector<std::vector<std::pair<int64_t, int64_t>>> &counted) {
  DeviceRank rank;
  if (onDevice) { // a rank of a parallel run: gradientNorm's share and groups, on the device
    rank = {onDevice->tp.get(), onDevice->dp.get(), onDevice->pp.get(), onDevice->embedding.get(), std::nullopt};
    device::NormShare share;
    // The replicas hold the same summed gradients: the first counts them, the others nothing. Under the
    // distributed optimizer each replica holds its chunk's sums and counts the runs in it.
    share.runs = dpRank == 0 || engine->plan().parallel.distributedOptimizer
                     ? counted
                     : std::vector<std::vector<std::pair<int64_t, int64_t>>>(counted.size());
    share.groups = {rank.tensor, dpSize > 1 ? rank.data : nullptr, rank.pipeline};
    rank.norm = std::move(share);
  }
  std::string error;
  std::unique_ptr<DeviceCompute> created = DeviceCompute::create(*engine, *backend, std::move(rank), error);
  if (!created)
    return error;
  device = created.get();
  compute = std::move(created);
  return {};
}

std::string Run::feed(const data::GptBatch &batch) {
  std::copy(batch.tokens.begin(), batch.tokens.end(), engine->as<int32_t>(inputs.tokens));
  std::copy(batch.labels.begin(), batch.labels.end(), engine->as<int32_t>(inputs.labels));
  std::copy(batch.lossMask.begin(), batch.lossMask.end(), engine->as<float>(inputs.lossMask));
  for (int id : {inputs.tokens, inputs.labels, inputs.lossMask})
    if (std::string error = compute->toDevice(id); !error.empty())
      return "copying the micro-batch's inputs: " + error;
  return {};
}

std::string Run::addLoss(const std::string &name, double &sum) {
  double value = 0;
  std::string error = compute->loss(name, value);
  sum += value;
  return error;
}

std::string Run::trainIteration(int64_t iteration, double &loss, double &gradNorm) {
  if (std::string error = compute->zeroGradients(); !error.empty())
    return "iteration " + std::to_string(iteration) + ": zeroing the gradients: " + error;
  // The iteration's global micro-batch g holds samples [first + g * size, first + (g + 1) * size) and draws its
  // dropout masks from g, whatever the layout: a data-parallel rank runs its share of them, exactly as the
  // single-rank run does.
  const uint64_t first = train->state();
  double sum = 0;
  if (stages)
    if (std::string error = runPipelineSchedule(iteration, first, sum); !error.empty())
      return error;
  for (int64_t m = 0; !stages && m < microBatches; ++m) {
    int64_t g = dpRank * microBatches + m;
    std::string error = feed(train->batch(first + static_cast<uint64_t>(g * microBatchSize)));
    runtime::RunContext context{true, runtime::dropoutSeedFor(opts.seed, iteration, g)};
    context.lossScale = scaler ? scaler->scale() : 1.0;
    if (error.empty())
      error = compute->run("train_step", context);
    if (error.empty())
      error = addLoss("train_step", sum);
    if (!error.empty())
      return "iteration " + std::to_string(iteration) + ", micro-batch " + std::to_string(g) + ": " + error;
  }
  train->restore(first + static_cast<uint64_t>(globalMicroBatches * microBatchSize));
  // The mean over all the iteration's micro-batches: the replicas' sums added.
  if (replicas && dpSize > 1)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "iteration " + std::to_string(iteration) + ": the loss: " + error;
  if (std::string error = shareOverStages(sum); !error.empty())
    return "iteration " + std::to_string(iteration) + ": the loss: " + error;
  loss = sum / static_cast<double>(globalMicroBatches);
  // Every rank has the same loss (the vocab-parallel loss is all-reduced, the replicas' sums too); rank 0 judges
  // it, and the others stop at their next collective.
  if (leader && !std::isfinite(loss) && !scaler) // with a loss scaler the step is skipped instead (below)
    return "iteration " + std::to_string(iteration) + ": the loss is " + std::to_string(loss) +
           "; lower --lr or raise --lr-warmup-iters";
  // Gradients that are partial sums over the ranks (norms under sequence parallelism, shared key/value heads), and
  // the replicas' gradients summed over the data-parallel group.
  if (hasFinalizeGrads)
    if (std::string error = compute->run("finalize_grads", runtime::RunContext{true, 0}); !error.empty())
      return "iteration " + std::to_string(iteration) + ": " + error;
  if (device)
    return deviceOptimizerStep(iteration, gradNorm);

  if (scaler) // the gradients of the scaled loss, back to the loss's scale
    cpu::scaleTensors<float>(static_cast<int>(grads.size()), grads.data(), sizes.data(),
                             static_cast<float>(1.0 / scaler->scale()));
  if (distributed)
    return distributedOptimizerStep(iteration, gradNorm);
  // Clipping by the global norm, as Megatron: scale by clip / (norm + 1e-6) when that is below 1.
  if (std::string error = gradientNorm(gradNorm); !error.empty())
    return "iteration " + std::to_string(iteration) + ": " + error;
  if (skipOverflow(gradNorm))
    return {};
  if (opts.clipGrad > 0) {
    double coefficient = opts.clipGrad / (gradNorm + 1e-6);
    if (coefficient < 1.0)
      cpu::scaleTensors<float>(static_cast<int>(grads.size()), grads.data(), sizes.data(),
                               static_cast<float>(coefficient));
  }
  cpu::AdamWConfig adam{lrAt(iteration), opts.adamBeta1, opts.adamBeta2, opts.adamEps, opts.weightDecay,
                        iteration - skippedIterations};
  for (const plan::Param &p : engine->plan().params)
    cpu::adamwStep<float>(engine->buffer(p.buffer).numElements(), adam, p.weightDecay, engine->as<float>(p.buffer),
                          engine->as<float>(p.grad), engine->as<float>(p.expAvg), engine->as<float>(p.expAvgSq));
  return {};
}

std::string Run::runPipelineSchedule(int64_t iteration, uint64_t first, double &sum) {
  // The compiler's order for this stage. A forward takes a free stash slot for its micro-batch and chunk, and
  // its backward gives it back; the inputs are fed again before each step, since other micro-batches ran between
  // (each micro-batch is read once per iteration, at its first step).
  const plan::PipelineInfo &pipeline = engine->plan().pipeline;
  const bool lastStage = stage == pipeline.stages - 1;
  std::vector<std::vector<int>> slotOf(static_cast<size_t>(pipeline.virtualStages),
                                       std::vector<int>(static_cast<size_t>(microBatches), -1));
  std::vector<std::optional<data::GptBatch>> batches(static_cast<size_t>(microBatches));
  for (const plan::PipelineStep &step : pipeline.schedule) {
    int64_t g = dpRank * microBatches + step.microBatch;
    std::string chunk = std::to_string(pipeline.globalChunk(step.chunk));
    std::vector<bool> &inUse = slotsInUse;
    int &slot = slotOf[static_cast<size_t>(step.chunk)][static_cast<size_t>(step.microBatch)];
    auto where = [&] {
      return "iteration " + std::to_string(iteration) + ", micro-batch " + std::to_string(g) + ", chunk " + chunk +
             (step.forward ? " forward: " : " backward: ");
    };
    if (step.forward) {
      auto free = std::find(inUse.begin(), inUse.end(), false);
      if (free == inUse.end())
        return where() + "no free stash slot: the schedule holds more micro-batches than the plan provides";
      slot = static_cast<int>(free - inUse.begin());
      *free = true;
      peakSlotsHeld = std::max(peakSlotsHeld, ++slotsHeld);
    } else if (slot < 0) {
      return where() + "the schedule runs a backward before its forward";
    }
    std::optional<data::GptBatch> &batch = batches[static_cast<size_t>(step.microBatch)];
    if (!batch)
      batch = train->batch(first + static_cast<uint64_t>(g * microBatchSize));
    runtime::RunContext context{true, runtime::dropoutSeedFor(opts.seed, iteration, g)};
    context.microBatch = step.microBatch;
    context.stashSlot = slot;
    context.lossScale = scaler ? scaler->scale() : 1.0;
    std::string name = (step.forward ? "train_forward_chunk" : "train_backward_chunk") + chunk;
    std::string error = feed(*batch);
    if (error.empty())
      error = compute->run(name, context);
    if (error.empty() && step.forward && lastStage && pipeline.globalChunk(step.chunk) == pipeline.numChunks() - 1)
      error = addLoss(name, sum);
    if (!error.empty())
      return where() + error;
    if (!step.forward) {
      inUse[static_cast<size_t>(slot)] = false;
      --slotsHeld;
      slot = -1;
    }
  }
  return {};
}

std::string Run::shareOverStages(double &sum) {
  if (!stages)
    return {};
  return stages->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum);
}

void Run::reportMemory() {
  // The plan's figure (every stash slot the schedule needs) beside the measured one: the persistent arenas, the
  // activations arena and kernel workspace, plus the stash slots this rank actually held at once.
  const plan::Plan &plan = engine->plan();
  int64_t planned = engine->allocatedBytes();
  int64_t measured = planned - (plan.pipeline.stashSlots - peakSlotsHeld) * engine->stashSlotBytes();
  std::printf("memory of pipeline stage %d (tensor rank 0, replica 0): planned %s with %lld micro-batch chunks' stash "
              "in flight, measured peak %s with %lld (%.1f%% of planned)\n",
              stage, mebibytes(planned).c_str(), static_cast<long long>(plan.pipeline.stashSlots),
              mebibytes(measured).c_str(), static_cast<long long>(peakSlotsHeld),
              100.0 * static_cast<double>(measured) / static_cast<double>(planned));
}

bool Run::skipOverflow(double &gradNorm) {
  if (!scaler)
    return false;
  const bool overflow = !std::isfinite(gradNorm);
  scaler->update(overflow);
  if (overflow) { // no update; the next iteration tries a smaller scale
    ++skippedIterations;
    ++intervalSkipped;
    gradNorm = std::numeric_limits<double>::quiet_NaN();
  }
  return overflow;
}

std::string Run::gradientNorm(double &norm) {
  // Each element of the whole model once: every rank of the first replica sums the squares of the elements it
  // owns (in double; the other replicas hold the same summed gradients and count nothing), and the groups add the
  // ranks' sums in rank order, so every rank clips with the same bits.
  double sum = 0;
  if (dpRank == 0)
    for (size_t i = 0; i < ownedGrads.size(); ++i)
      sum += cpu::sumOfSquares<float>(ownedSizes[i], ownedGrads[i]);
  if (group)
    if (std::string error = group->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "the gradient norm: " + error;
  if (replicas && dpSize > 1)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "the gradient norm: " + error;
  if (std::string error = shareOverStages(sum); !error.empty())
    return "the gradient norm: " + error;
  norm = std::sqrt(sum);
  return {};
}

std::string Run::setUpDistributedOptimizer(const std::vector<device::Runs> &counted) {
  // The replica's chunk from the plan, as the device optimizer works it out (runtime/device/ReplicaChunk.h): the
  // arenas' layout checked, the parameters' pieces in the chunk and the flat runs of it this rank counts.
  std::string error;
  std::optional<device::ReplicaChunk> mine = device::replicaChunk(engine->plan(), dpRank, dpSize, &counted, error);
  if (!mine)
    return error;
  distributed = true;
  chunk = mine->chunk;
  lo = mine->lo;
  hi = mine->hi;
  flatGrads = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Grads));
  flatParams = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Params));
  shardExpAvg = engine->as<float>(engine->plan().optimizerShard->expAvg);
  shardExpAvgSq = engine->as<float>(engine->plan().optimizerShard->expAvgSq);
  for (const device::ReplicaChunk::Piece &piece : mine->pieces)
    pieces.push_back({flatParams + piece.flat, shardExpAvg + (piece.flat - lo), shardExpAvgSq + (piece.flat - lo),
                      piece.flat, piece.length, piece.decay});
  normRuns = std::move(mine->normRuns);
  return {};
}

std::string Run::distributedOptimizerStep(int64_t iteration, double &gradNorm) {
  auto fail = [&](const std::string &what, const std::string &error) {
    return "iteration " + std::to_string(iteration) + ": the distributed optimizer's " + what + ": " + error;
  };
  // The replicas' gradients summed, each replica receiving its chunk, in place in the gradients arena (whose
  // padding past the arena's end stays zero).
  const bool several = replicas && dpSize > 1; // one replica: its chunk is the whole arena, nothing to exchange
  if (several)
    if (std::string error = replicas->reduceScatter(flatGrads, flatGrads + dpRank * chunk, chunk,
                                                    plan::DType::F32, comm::ReduceOp::Sum);
        !error.empty())
      return fail("reduce-scatter", error);
  // The norm over the chunks: each element counted by one tensor-parallel rank of one replica.
  double sum = 0;
  for (const auto &[at, length] : normRuns)
    sum += cpu::sumOfSquares<float>(length, flatGrads + at);
  if (group)
    if (std::string error = group->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return fail("gradient norm", error);
  if (several)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return fail("gradient norm", error);
  if (std::string error = shareOverStages(sum); !error.empty())
    return fail("gradient norm", error);
  gradNorm = std::sqrt(sum);
  // The reduce-scatter carried any replica's inf or NaN into its owner's chunk, so the norm sees it.
  if (skipOverflow(gradNorm))
    return {};
  if (opts.clipGrad > 0) {
    double coefficient = opts.clipGrad / (gradNorm + 1e-6);
    if (coefficient < 1.0) {
      float *chunkData = flatGrads + lo;
      cpu::Index size = hi - lo;
      cpu::scaleTensors<float>(1, &chunkData, &size, static_cast<float>(coefficient));
    }
  }
  cpu::AdamWConfig adam{lrAt(iteration), opts.adamBeta1, opts.adamBeta2, opts.adamEps, opts.weightDecay,
                        iteration - skippedIterations};
  for (const Piece &piece : pieces)
    cpu::adamwStep<float>(piece.length, adam, piece.decay, piece.value, flatGrads + piece.flat, piece.expAvg,
                          piece.expAvgSq);
  // Every replica gets every chunk's new parameters, in place in the parameters arena.
  if (several)
    if (std::string error = replicas->allGather(flatParams + dpRank * chunk, flatParams, chunk, plan::DType::F32);
        !error.empty())
      return fail("all-gather", error);
  engine->weightsChanged(); // written through flatParams, which the engine cannot see
  return {};
}

std::string Run::deviceOptimizerStep(int64_t iteration, double &gradNorm) {
  // The CPU path's order on the device (DeviceOptimizer): unscale, global norm, then skip on an overflow (the
  // scaler learns of it from the non-finite norm, as skipOverflow always does) or clip and step AdamW.
  device::AdamWSettings adam{lrAt(iteration), opts.adamBeta1, opts.adamBeta2, opts.adamEps, opts.weightDecay,
                             iteration - skippedIterations};
  bool skipped = false;
  if (std::string error = device->optimizerStep(adam, opts.clipGrad, scaler ? scaler->scale() : 1.0, gradNorm,
                                                scaler ? &skipped : nullptr);
      !error.empty())
    return "iteration " + std::to_string(iteration) + ": the optimizer step: " + error;
  skipOverflow(gradNorm);
  return {};
}

std::string Run::gatherOptimizerState(FlatMoments &whole) {
  // Each replica holds its chunk of the moments: gather both moments' chunks into whole flat arrays (what a
  // checkpoint saves, and what any layout resumes from), in place.
  for (int moment = 0; moment < 2; ++moment) {
    const float *shard = moment == 0 ? shardExpAvg : shardExpAvgSq;
    std::vector<float> &out = moment == 0 ? wholeExpAvg : wholeExpAvgSq;
    out.assign(static_cast<size_t>(dpSize * chunk), 0.0f);
    std::copy(shard, shard + chunk, out.begin() + dpRank * chunk);
    if (replicas && dpSize > 1)
      if (std::string error = replicas->allGather(out.data() + dpRank * chunk, out.data(), chunk, plan::DType::F32);
          !error.empty())
        return "gathering the distributed optimizer's state: " + error;
  }
  whole = {wholeExpAvg.data(), wholeExpAvgSq.data()};
  return {};
}

void Run::scatterOptimizerState() {
  // This replica's chunk of whole flat moments (a loaded checkpoint's); the padding past the arena's end stays zero.
  std::fill(shardExpAvg, shardExpAvg + chunk, 0.0f);
  std::fill(shardExpAvgSq, shardExpAvgSq + chunk, 0.0f);
  std::copy(wholeExpAvg.begin() + lo, wholeExpAvg.begin() + hi, shardExpAvg);
  std::copy(wholeExpAvgSq.begin() + lo, wholeExpAvgSq.begin() + hi, shardExpAvgSq);
}

std::string Run::evaluate(double &loss) {
  // The same validation samples every time, so that the points of the curve compare: --eval-iters global
  // batches, of which each data-parallel rank evaluates its consecutive share; the replicas' sums are added.
  int64_t batches = opts.evalIters * globalMicroBatches, size = engine->buffer(inputs.tokens).shape[0];
  int64_t share = batches / dpSize;
  double sum = 0;
  // Under pipeline parallelism each micro-batch passes through the stage's chunks in order; the last holds the loss.
  const plan::PipelineInfo &pipeline = engine->plan().pipeline;
  std::vector<std::string> programs;
  for (int64_t v = 0; stages && v < pipeline.virtualStages; ++v)
    programs.push_back("forward_chunk" + std::to_string(pipeline.globalChunk(v)));
  if (!stages)
    programs.push_back("forward");
  const bool holdsLoss = !stages || stage == pipeline.stages - 1;
  for (int64_t i = dpRank * share; i < (dpRank + 1) * share; ++i) {
    if (std::string error = feed(validation->batch(static_cast<uint64_t>(i * size))); !error.empty())
      return "evaluation: " + error;
    runtime::RunContext context{false, 0};
    context.microBatch = i;
    for (const std::string &name : programs)
      if (std::string error = compute->run(name, context); !error.empty())
        return "evaluation: " + error;
    if (holdsLoss)
      if (std::string error = addLoss(programs.back(), sum); !error.empty())
        return "evaluation: " + error;
  }
  if (replicas && dpSize > 1)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "evaluation: " + error;
  if (std::string error = shareOverStages(sum); !error.empty())
    return "evaluation: " + error;
  loss = sum / static_cast<double>(batches);
  return {};
}

void Run::progress(int64_t iteration, double loss) {
  if (!leader || !shared.showProgress)
    return;
  int width = 30;
  int done = static_cast<int>(width * iteration / std::max<int64_t>(opts.trainIters, 1));
  std::printf("\r [%s%s] %lld/%lld  loss %.4f  %s", std::string(done, '#').c_str(),
              std::string(width - done, ' ').c_str(), static_cast<long long>(iteration),
              static_cast<long long>(opts.trainIters), loss, floorText("(floor ", ") ").c_str());
  std::fflush(stdout);
  shared.progressShown = true;
}

void Run::log(int64_t iteration, double loss, double gradNorm, double lr, double seconds, double commSeconds,
              int64_t iterations) {
  if (!leader)
    return;
  if (shared.progressShown) {
    std::printf("\r%*s\r", 80, "");
    shared.progressShown = false;
  }
  double perIteration = seconds / std::max<int64_t>(iterations, 1);
  std::printf(" iteration %8lld/%8lld | consumed samples: %10lld | elapsed time per iteration (ms): %.1f | "
              "tokens/s: %.0f | learning rate: %.3E | lm loss: %.6E | grad norm: %.3f%s",
              static_cast<long long>(iteration), static_cast<long long>(opts.trainIters),
              static_cast<long long>(train->state()), perIteration * 1000.0, batchTokens / perIteration, lr, loss,
              gradNorm, floorText(" | floor: ", "").c_str());
  if (scaler) { // Megatron's fields
    std::printf(" | loss scale: %.1f | number of skipped iterations: %3lld", scaler->scale(),
                static_cast<long long>(intervalSkipped));
    intervalSkipped = 0;
  }
  if (timesCommunication()) // rank 0's time inside collectives, waiting for the other ranks included
    std::printf(" | communication (ms): %.1f", commSeconds / std::max<int64_t>(iterations, 1) * 1000.0);
  std::printf("\n");
  std::fflush(stdout);
}

std::string Run::main() {
  if (std::string error = setUp(); !error.empty())
    return error;
  const plan::Plan &plan = engine->plan();
  if (leader) {
    std::printf("megatron-run: %s, %llu parameters, %lld micro-batch(es) of %lld x %lld tokens per iteration, "
                "%d threads\n",
                plan.model.family.c_str(), static_cast<unsigned long long>(plan.model.parameters),
                static_cast<long long>(globalMicroBatches),
                static_cast<long long>(engine->buffer(inputs.tokens).shape[0]),
                static_cast<long long>(engine->buffer(inputs.tokens).shape[1]),
                shared.threadsPerRank * shared.ranks);
    std::printf("tensor parallel: %d, data parallel: %d (", shared.tensor, shared.data);
    if (shared.ranks > 1)
      std::printf("%d ranks as %s, %d OpenMP thread%s each", shared.ranks,
                  shared.launcher.empty() ? "threads" : ("processes under " + shared.launcher).c_str(),
                  shared.threadsPerRank, shared.threadsPerRank == 1 ? "" : "s");
    else
      std::printf("1 rank");
    if (shared.data > 1)
      std::printf("; %lld micro-batch(es) per data-parallel rank", static_cast<long long>(microBatches));
    if (distributed)
      std::printf("; distributed optimizer");
    std::printf("), sequence parallel: %s\n", plan.parallel.sequence ? "on" : "off");
    if (device)
      std::printf("device: %s (the programs and the optimizer step; the host feeds the inputs)%s\n",
                  device->describe().c_str(),
                  shared.deviceWorld.empty() ? "" : ("; the ranks' collectives through " + shared.deviceWorld).c_str());
    if (shared.pipeline > 1)
      std::printf("pipeline parallel: %d stages%s, %lld micro-batches per replica and iteration\n", shared.pipeline,
                  plan.pipeline.virtualStages > 1
                      ? (" x " + std::to_string(plan.pipeline.virtualStages) + " virtual (interleaved 1F1B)").c_str()
                      : " (1F1B)",
                  static_cast<long long>(plan.pipeline.microBatches));
    if (std::string warning = cpu::blasCoreWarning(); !warning.empty())
      std::fprintf(stderr, "megatron-run: warning: %s\n", warning.c_str());
    std::printf("data: %s\n", train->describe().c_str());
  }

  std::string lossLog = "iteration,loss,lr,grad_norm,validation_loss\n";
  auto runStart = Clock::now(), intervalStart = runStart;
  double intervalLoss = 0, lastLoss = 0, lastValidation = -1, intervalComm = 0, trainComm = 0, trainSeconds = 0;
  int64_t intervalIterations = 0, trained = 0;
  for (int64_t iteration = startIteration + 1; iteration <= opts.trainIters; ++iteration) {
    double loss = 0, gradNorm = 0;
    double commBefore = 0, commAfter = 0;
    if (std::string error = communicationSeconds(commBefore); !error.empty())
      return error;
    auto iterationStart = Clock::now();
    if (std::string error = trainIteration(iteration, loss, gradNorm); !error.empty())
      return error;
    if (std::string error = communicationSeconds(commAfter); !error.empty())
      return error;
    double comm = commAfter - commBefore;
    intervalComm += comm;
    trainComm += comm;
    trainSeconds += secondsSince(iterationStart);
    ++trained;
    lastLoss = loss;
    intervalLoss += loss;
    ++intervalIterations;
    curve.train.push_back({iteration, loss});
    char row[160];
    std::snprintf(row, sizeof row, "%lld,%.17g,%.17g,%.17g,", static_cast<long long>(iteration), loss,
                  lrAt(iteration), gradNorm);
    lossLog += row;
    progress(iteration, loss);
    if (iteration % opts.logInterval == 0 || iteration == opts.trainIters) {
      log(iteration, intervalLoss / intervalIterations, gradNorm, lrAt(iteration),
          secondsSince(intervalStart), intervalComm, intervalIterations);
      intervalComm = 0;
      intervalLoss = 0;
      intervalIterations = 0;
      intervalStart = Clock::now();
    }
    if (iteration % opts.evalInterval == 0 || iteration == opts.trainIters) {
      if (std::string error = evaluate(lastValidation); !error.empty())
        return error;
      curve.validation.push_back({iteration, lastValidation});
      char validation[32];
      std::snprintf(validation, sizeof validation, "%.17g", lastValidation);
      lossLog += validation;
      if (leader)
        std::printf(" validation loss at iteration %lld: %.6E%s\n", static_cast<long long>(iteration), lastValidation,
                    floor >= 0 ? (floorText(" | floor ", "") + " | gap " + fixed(lastValidation - floor) + " nats/token").c_str()
                               : "");
      intervalStart = Clock::now(); // evaluation is not training time
    }
    lossLog += "\n";
    bool exitNow = opts.exitInterval > 0 && iteration % opts.exitInterval == 0 && iteration < opts.trainIters;
    bool saveNow = !opts.save.empty() && ((opts.saveInterval > 0 && iteration % opts.saveInterval == 0) ||
                                          iteration == opts.trainIters || exitNow);
    if (saveNow) {
      if (device) // the checkpoint is written from the host engine (the moments' chunks gathered there)
        if (std::string error = trainingStateToHost(*compute, engine->plan()); !error.empty())
          return error;
      FlatMoments whole;
      if (distributed)
        if (std::string error = gatherOptimizerState(whole); !error.empty())
          return error;
      ResumeState state{iteration, train->state(), {{"seed", opts.seed}, {"consumed_samples", train->state()}}};
      if (scaler) {
        state.runState["grad_scaler"] = scaler->state();
        state.runState["skipped_iterations"] = skippedIterations;
      }
      std::string saved = saveTrainingCheckpoint(*engine, opts.save, state, distributed ? &whole : nullptr);
      std::vector<float>().swap(wholeExpAvg);
      std::vector<float>().swap(wholeExpAvgSq);
      if (!saved.empty())
        return saved;
      if (leader)
        std::printf(" saved checkpoint at iteration %lld to %s\n", static_cast<long long>(iteration),
                  opts.save.c_str());
      intervalStart = Clock::now();
    }
    if (exitNow) {
      if (leader)
        std::printf(" exiting after iteration %lld (--exit-interval)\n", static_cast<long long>(iteration));
      break;
    }
  }

  double seconds = secondsSince(runStart);
  if (leader && trained > 0) {
    std::printf("\nsummary: %lld iterations in %.1f s (%.0f tokens/s); final training loss %.4f, ",
                static_cast<long long>(trained), seconds, trained * batchTokens / seconds, lastLoss);
    if (lastValidation >= 0 && floor >= 0)
      std::printf("validation loss %.4f, entropy floor %.4f (gap %.4f nats/token)\n", lastValidation, floor,
                  lastValidation - floor);
    else if (lastValidation >= 0)
      std::printf("validation loss %.4f\n", lastValidation);
    else
      std::printf("%s\n", floor >= 0 ? ("entropy floor " + fixed(floor) + " (not evaluated)").c_str() : "not evaluated");
    std::string planned = mebibytes(engine->allocatedBytes());
    if (shared.ranks > 1)
      planned += " per rank x " + std::to_string(shared.ranks) + " ranks";
    if (timesCommunication())
      std::printf("communication: %.1f ms per iteration on rank 0 (%.0f%% of its training time; time inside "
                  "collectives%s, waiting for the other ranks included)\n",
                  trainComm / trained * 1000.0, trainSeconds > 0 ? 100.0 * trainComm / trainSeconds : 0.0,
                  device ? " on the device's stream" : "");
    if (device)
      std::printf("memory: planned %s on the device (parameters, gradients, AdamW state, inputs, activations), "
                  "measured peak resident on the host %s\n",
                  (mebibytes(device->allocatedBytes()) +
                   (shared.ranks > 1 ? " per rank x " + std::to_string(shared.ranks) + " ranks" : ""))
                      .c_str(),
                  mebibytes(peakResidentBytes()).c_str());
    else
      std::printf("memory: planned %s (parameters, gradients, AdamW state, inputs, activations), measured peak "
                  "resident %s\n",
                  planned.c_str(), mebibytes(peakResidentBytes()).c_str());
  }
  if (stages && trained > 0 && (!group || group->rank() == 0) && dpRank == 0) {
    // One line per stage, in stage order (the stages take turns).
    for (int s = 0; s < stages->size(); ++s) {
      if (s == stage)
        reportMemory();
      std::fflush(stdout);
      double none = 0;
      if (std::string error = stages->allReduce(&none, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
        return "the memory report: " + error;
    }
  }
  if (leader && trained > 1)
    std::printf("\n%s", renderText(curve).c_str());
  if (leader && !opts.lossLog.empty())
    if (std::string error = writeFileAtomically(opts.lossLog, lossLog); !error.empty())
      return "--loss-log: " + error;
  if (leader && !opts.lossCurve.empty() && trained > 0) {
    if (std::string error = writeFileAtomically(opts.lossCurve, renderSvg(curve)); !error.empty())
      return "--loss-curve: " + error;
    std::printf("loss curve: %s\n", opts.lossCurve.c_str());
  }

  if (opts.generate > 0 && dpRank == 0) {
    // Every rank of the first replica generates (the logits program is collective over the tensor-parallel group,
    // and its last all-gather gives every rank the whole logits); all draw the same tokens from the same seed, and
    // rank 0 prints them. The other replicas hold the same weights and have nothing to add.
    if (!train->detokenize(nullptr, 0))
      return "--generate: these data cannot be decoded into text; give the tokenizer's --vocab-file and --merge-file";
    SamplingOptions sampling{opts.greedy, opts.temperature, opts.topK, opts.topP, opts.seed};
    size_t length = opts.generateTokens > 0 ? static_cast<size_t>(opts.generateTokens) + 1
                                            : static_cast<size_t>(engine->buffer(inputs.tokens).shape[1]);
    if (leader)
      std::printf("\nsamples (%s):\n", opts.greedy ? "greedy"
                                                   : ("temperature " + std::to_string(opts.temperature) +
                                                      ", top-k " + std::to_string(opts.topK) + ", top-p " +
                                                      std::to_string(opts.topP))
                                                         .c_str());
    for (int sample = 0; sample < opts.generate; ++sample) {
      std::vector<int32_t> tokens = {train->endOfDocument()};
      if (std::string error = generate(*engine, *compute, static_cast<int64_t>(train->vocabularySize()), sampling,
                                       static_cast<uint64_t>(sample), length, tokens);
          !error.empty())
        return "--generate: " + error;
      // A sample is one document: it ends at the first end-of-document token the model writes.
      auto end = std::find(tokens.begin() + 1, tokens.end(), train->endOfDocument());
      if (leader)
        std::printf("  %d. %s\n", sample + 1,
                    train->detokenize(tokens.data() + 1, static_cast<size_t>(end - tokens.begin() - 1))->c_str());
    }
  }
  if (leader)
    std::fflush(stdout);
  return {};
}

/// The device backends of this process's ranks for --device cuda and auto, into shared.backends: one per rank for
/// ranks as threads, all on device 0 (the same-device world joins them), or this process's on its local rank's
/// device. "" or why the run cannot be on devices.
std::string makeDeviceBackends(Shared &shared, const comm::LaunchInfo &launch, const DeviceBackendFactory &makeBackend,
                               const DeviceWorldFactory &connectDevices) {
  if (!makeBackend)
    return "this build of the runtime has no device backend";
  const bool processes = launch.multiProcess();
  if (processes && shared.ranks > 1 && !connectDevices)
    return "the ranks are processes under " + shared.launcher +
           ", and this build cannot connect their devices (that takes NCCL; docs/cuda.md, \"NCCL\")";
  for (int r = 0; r < (processes ? 1 : shared.ranks); ++r) {
    std::string why;
    std::unique_ptr<device::DeviceBackend> backend = makeBackend(processes ? launch.localRank : 0, why);
    if (!backend)
      return why.empty() ? "no device backend could be made" : why;
    shared.backends.push_back(std::move(backend));
  }
  if (shared.ranks > 1)
    shared.deviceWorld = processes ? "the device communicator across the processes"
                                   : "the same-device communicator (a stream per rank)";
  return {};
}

/// Ranks as processes run on devices only if every process has one: the processes' verdicts summed over the host
/// world. `why` is this process's ("" where it has a backend); returns the common verdict.
std::string agreeOnDevices(comm::Communicator &world, const std::string &why) {
  double lacking = why.empty() ? 0 : 1;
  if (std::string error = world.allReduce(&lacking, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
    return "agreeing on the devices: " + error;
  if (!why.empty() || lacking == 0)
    return why;
  return std::to_string(static_cast<int>(lacking)) + " of the " + std::to_string(world.size()) +
         " processes cannot run on a device";
}

/// Reads the plan and checks what every rank would otherwise check alike, then runs the ranks: one Run on this
/// thread for a single rank, else `tensor` threads joined by a communicator.
int runAll(const TrainOptions &opts, const DeviceBackendFactory &makeBackend,
           const DeviceWorldFactory &connectDevices) {
  Shared *sharedPtr = nullptr;
  auto fail = [&](const std::string &message) {
    if (sharedPtr && sharedPtr->progressShown)
      std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "megatron-run: error: %s\n", message.c_str());
    return 1;
  };
  std::string error;
  std::optional<std::vector<plan::Plan>> loaded = plan::readPlanStages(opts.plan, error);
  if (!loaded)
    return fail(error);
  const bool pipelined = loaded->size() > 1;
  if (!pipelined && (!loaded->front().program("train_step") || !loaded->front().program("forward")))
    return fail("plan '" + opts.plan + "' has no train_step and forward programs");
  Shared shared{opts, std::move(*loaded), {}};
  sharedPtr = &shared;
  const plan::Plan &firstStage = shared.plans.front();
  if (std::string problem = findGptInputs(firstStage, shared.inputs); !problem.empty())
    return fail("plan '" + opts.plan + "': " + problem);
  int64_t corpusVocab = static_cast<int64_t>(data::SyntheticLanguage::builtin().vocabulary().size());
  int64_t modelVocab = 0;
  for (const plan::Param &p : firstStage.params)
    if (p.name == "embedding.word_embeddings.weight")
      modelVocab = p.shape.empty() ? firstStage.buffers[static_cast<size_t>(p.buffer)].shape[0] : p.shape[0];
  if (opts.dataPath.empty() && modelVocab < corpusVocab)
    return fail("the model's vocabulary (" + std::to_string(modelVocab) +
                ") is smaller than the built-in corpus's (" + std::to_string(corpusVocab) +
                "); compile it with megatron-model --vocab-size " + std::to_string(corpusVocab));
  if (!opts.save.empty())
    if (std::string problem = checkSaveDirectory(opts.save); !problem.empty())
      return fail(problem);
  shared.showProgress = opts.progress == 1 || (opts.progress < 0 && ::isatty(STDOUT_FILENO));

  int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency());
  const plan::ParallelInfo &parallel = firstStage.parallel;
  const int64_t stageCount = static_cast<int64_t>(shared.plans.size());
  if (parallel.tensor < 1 || parallel.data < 1 || parallel.tensor * parallel.data * stageCount > 1024)
    return fail("plan '" + opts.plan + "' is compiled for " + std::to_string(parallel.tensor) +
                " tensor-parallel x " + std::to_string(parallel.data) + " data-parallel x " +
                std::to_string(stageCount) + " pipeline ranks; this runtime runs between 1 and 1024");
  if (firstStage.model.numMicroBatches % parallel.data != 0)
    return fail("plan '" + opts.plan + "' has " + std::to_string(firstStage.model.numMicroBatches) +
                " micro-batches per iteration, which its " + std::to_string(parallel.data) +
                " data-parallel ranks cannot share evenly");
  shared.tensor = static_cast<int>(parallel.tensor);
  shared.data = static_cast<int>(parallel.data);
  shared.pipeline = static_cast<int>(stageCount);
  shared.ranks = shared.tensor * shared.data * shared.pipeline;
  shared.threadsPerRank = std::max(1, threads / shared.ranks);

  // Under mpirun or srun this process is one rank of the job; otherwise the ranks are threads of this process.
  std::string launchError;
  comm::Environment environment = comm::processEnvironment();
  comm::LaunchInfo launch = comm::detectLaunch(environment, launchError);
  if (!launchError.empty())
    return fail(launchError);
  // Megatron's --distributed-timeout-minutes bounds the torchrun-style rendezvous too, unless the environment
  // sets MEGATRON_RENDEZVOUS_TIMEOUT for it.
  if (!environment.count("MEGATRON_RENDEZVOUS_TIMEOUT"))
    launch.rendezvousTimeout =
        std::chrono::milliseconds(static_cast<int64_t>(opts.distributedTimeoutMinutes * 60'000.0));
  std::unique_ptr<comm::Communicator> world; // ranks as processes: the launcher's world, on the host
  if (launch.multiProcess()) {
    if (launch.worldSize != shared.ranks)
      return fail(std::string(comm::toString(launch.launcher)) + " started " + std::to_string(launch.worldSize) +
                  " processes, but plan '" + opts.plan + "' is compiled for tensor parallel " +
                  std::to_string(shared.tensor) + " x data parallel " + std::to_string(shared.data) +
                  " x pipeline parallel " + std::to_string(shared.pipeline) + " = " + std::to_string(shared.ranks) +
                  " ranks; the world size must be tp x dp x pp");
    shared.launcher = comm::toString(launch.launcher);
    if (!(world = comm::connectWorld(launch, error)))
      return fail(error);
  }

  // --device cuda and auto: every rank's programs on a device backend; auto falls back to the CPU, saying why.
  comm::ThreadWorldOptions worldOptions; // ranks as threads: how long a collective waits
  worldOptions.timeout = std::chrono::milliseconds(static_cast<int64_t>(opts.distributedTimeoutMinutes * 60'000.0));
  std::unique_ptr<comm::ThreadWorld> sameDeviceWorld; // ranks as threads on one device: their device world
  if (opts.device != "cpu") {
    std::string why = makeDeviceBackends(shared, launch, makeBackend, connectDevices);
    if (world) { // the processes decide alike, or they would not meet in the same collectives
      why = agreeOnDevices(*world, why);
    } else if (why.empty() && shared.ranks > 1) {
      std::vector<device::DeviceBackend *> backends;
      for (const std::unique_ptr<device::DeviceBackend> &backend : shared.backends)
        backends.push_back(backend.get());
      sameDeviceWorld = device::createSameDeviceWorld(backends, why, worldOptions);
    }
    if (!why.empty()) {
      sameDeviceWorld.reset();
      shared.backends.clear();
      if (opts.device == "cuda")
        return fail("--device cuda: " + why + " (--device cpu runs on the CPU)");
      std::fprintf(stderr, "megatron-run: --device auto: %s; running on the CPU\n", why.c_str());
    }
  }
  const bool onDevice = !shared.backends.empty();

  // One rank's training: its groups split off the world (and, on devices, off the device world alike), then the
  // loop. On devices the loop's own sums and the checkpoints stay on the host world's groups: their buffers are
  // host memory.
  auto runRank = [&](int rank, comm::Communicator &hostWorld, comm::Communicator *deviceWorld) -> std::string {
    cpu::setNumThreads(shared.threadsPerRank);
    Groups host, devices;
    std::string failure = splitGroups(hostWorld, rank, shared, host);
    if (failure.empty() && deviceWorld)
      if (failure = splitGroups(*deviceWorld, rank, shared, devices); !failure.empty())
        failure = "on the device: " + failure;
    if (failure.empty()) {
      Run run(shared, &host, deviceWorld ? &devices : nullptr,
              onDevice ? shared.backends[launch.multiProcess() ? 0 : static_cast<size_t>(rank)].get() : nullptr);
      failure = run.main();
    }
    // Threads: fail the groups in this rank's own name, so that the peers' messages read 'rank R of group "tp" ...
    // failed' (the first failure wins); the device world's first, since the root cause is read there (below).
    // Processes: the caller reports first, then aborts the job.
    if (!failure.empty() && !launch.multiProcess()) {
      if (comm::Communicator *first = devices.tp ? devices.tp.get() : deviceWorld)
        first->abort(failure);
      if (host.tp)
        host.tp->abort(failure);
    }
    return failure;
  };

  if (launch.multiProcess()) {
    // --cpu-threads (or every core) is the node's: each of its processes takes its share.
    int perNode = launch.localSize > 0 ? launch.localSize : 1;
    shared.threadsPerRank = std::max(1, (opts.threads > 0 ? opts.threads : threads) / perNode);
    cpu::setNumThreads(shared.threadsPerRank);
    // On devices, the device world is connected over the host world (NCCL under megatron-run).
    std::unique_ptr<comm::Communicator> deviceWorld;
    if (onDevice && shared.ranks > 1 && !(deviceWorld = connectDevices(*world, *shared.backends.front(), error)))
      error = "--device cuda: connecting the ranks' devices: " + error;
    if (error.empty())
      error = runRank(launch.worldRank, *world, deviceWorld.get());
    if (!error.empty()) {
      // The peers may be blocked in MPI or NCCL calls that cannot time out: report, then stop the whole job.
      fail("rank " + std::to_string(launch.worldRank) + ": " + error);
      if (deviceWorld)
        deviceWorld->abort(error);
      world->abort(error);
      return 1;
    }
    std::fflush(stdout);
    return 0;
  }

  cpu::setNumThreads(threads);
  // Ranks as threads, each with its own OpenMP team (GEMMs included: one pool, cpu/Threads.cpp). A rank's failure
  // aborts the world; runRanks names the rank at its root.
  if (shared.ranks == 1) {
    Run run(shared, nullptr, nullptr, onDevice ? shared.backends.front().get() : nullptr);
    error = run.main();
  } else if (!onDevice) {
    error = comm::runRanks(
        shared.ranks, [&](int rank, comm::Communicator &hostWorld) { return runRank(rank, hostWorld, nullptr); },
        worldOptions);
  } else {
    // On one device: every rank's backend (its own stream) in the same-device world, beside the host world.
    comm::ThreadWorld &deviceWorld = *sameDeviceWorld;
    std::vector<std::string> errors(static_cast<size_t>(shared.ranks));
    error = comm::runRanks(
        shared.ranks,
        [&](int rank, comm::Communicator &hostWorld) {
          struct Finished { // however the rank ends, its device peers stop waiting for it
            comm::ThreadWorld &world;
            int rank;
            ~Finished() { world.finished(rank); }
          } finished{deviceWorld, rank};
          return errors[static_cast<size_t>(rank)] = runRank(rank, hostWorld, &deviceWorld.communicator(rank));
        },
        worldOptions);
    // Every failure reaches the device world first (a failing rank aborts it before the host world; a failed
    // device step aborts it itself), so its first failure is the root cause.
    if (int origin = deviceWorld.failedRank(); origin >= 0)
      error = "rank " + std::to_string(origin) + ": " +
              (errors[static_cast<size_t>(origin)].empty() ? deviceWorld.failureReason()
                                                           : errors[static_cast<size_t>(origin)]);
  }
  if (!error.empty())
    return fail(error);
  std::fflush(stdout);
  return 0;
}

} // namespace

std::vector<std::string> validate(const TrainOptions &o) {
  std::vector<std::string> problems;
  auto check = [&](bool ok, const std::string &message) {
    if (!ok)
      problems.push_back(message);
  };
  check(!o.plan.empty(), "--plan: give the plan to run (megatron-opt --mt-autodiff --mt-plan=output=FILE)");
  check(o.trainIters > 0 || (o.trainIters == 0 && !o.load.empty() && o.generate > 0),
        "--train-iters must be positive (0 only to --generate from a --load checkpoint), got " +
            std::to_string(o.trainIters));
  check(o.schedule.lr >= 0, "--lr must not be negative, got " + std::to_string(o.schedule.lr));
  check(o.distributedTimeoutMinutes > 0 && o.distributedTimeoutMinutes <= 1e6,
        "--distributed-timeout-minutes must be positive, got " + std::to_string(o.distributedTimeoutMinutes));
  check(o.schedule.minLr >= 0 && o.schedule.minLr <= o.schedule.lr,
        "--min-lr must be in [0, --lr], got " + std::to_string(o.schedule.minLr));
  check(o.schedule.warmupIters >= 0, "--lr-warmup-iters must not be negative");
  check(o.trainIters == 0 || o.schedule.style == DecayStyle::Constant ||
            o.schedule.decayIters > o.schedule.warmupIters,
        "--lr-decay-iters (" + std::to_string(o.schedule.decayIters) + ") must exceed --lr-warmup-iters (" +
            std::to_string(o.schedule.warmupIters) + ")");
  check(o.adamBeta1 >= 0 && o.adamBeta1 < 1, "--adam-beta1 must be in [0, 1)");
  check(o.adamBeta2 >= 0 && o.adamBeta2 < 1, "--adam-beta2 must be in [0, 1)");
  check(o.adamEps > 0, "--adam-eps must be positive");
  check(o.weightDecay >= 0, "--weight-decay must not be negative");
  check(o.clipGrad >= 0, "--clip-grad must not be negative (0 disables clipping)");
  const LossScaleOptions &scale = o.lossScale;
  check(!scale.constant || (*scale.constant > 0 && std::isfinite(*scale.constant)),
        "--loss-scale must be a positive number, got " + std::to_string(scale.constant.value_or(0)));
  check(scale.initial > 0 && std::isfinite(scale.initial),
        "--initial-loss-scale must be a positive number, got " + std::to_string(scale.initial));
  check(scale.minimum > 0 && scale.minimum <= scale.initial,
        "--min-loss-scale must be in (0, --initial-loss-scale], got " + std::to_string(scale.minimum));
  check(scale.window > 0, "--loss-scale-window must be positive, got " + std::to_string(scale.window));
  check(scale.hysteresis > 0, "--hysteresis must be positive, got " + std::to_string(scale.hysteresis));
  check(o.logInterval > 0, "--log-interval must be positive");
  check(o.evalInterval > 0, "--eval-interval must be positive");
  check(o.evalIters > 0, "--eval-iters must be positive");
  check(o.saveInterval >= 0, "--save-interval must not be negative");
  check(o.exitInterval >= 0, "--exit-interval must not be negative");
  check(o.saveInterval == 0 || !o.save.empty(), "--save-interval needs --save");
  check(o.device == "cpu" || o.device == "cuda" || o.device == "auto",
        "--device: unknown value '" + o.device + "'; expected cpu, cuda or auto");
  check(o.generate >= 0 && o.generateTokens >= 0, "--generate and --generate-tokens must not be negative");
  check(o.temperature > 0, "--temperature must be positive");
  check(o.topK >= 0, "--top-k must not be negative");
  check(o.topP > 0 && o.topP <= 1, "--top-p must be in (0, 1]");
  return problems;
}

int runTraining(const TrainOptions &options, const DeviceBackendFactory &makeBackend,
                const DeviceWorldFactory &connectDevices) {
  return runAll(options, makeBackend, connectDevices);
}

} // namespace megatron::train
