//===- Trainer.cpp - megatron-run's training: the ranks and their worlds ------===//
//
// Reads the plan, checks what every rank would otherwise check alike, finds the ranks (threads, or processes under
// a launcher), their communicators and their devices, and runs one Run (Run.h) per rank of this process.
//
//===----------------------------------------------------------------------===//

#include "Run.h"
#include "Shards.h"

#include "runtime/comm/Launch.h"
#include "runtime/comm/ThreadCommunicator.h"
#include "runtime/device/SameDeviceCommunicator.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>
#include <unistd.h>

namespace megatron::train {

namespace {

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
           const DeviceWorldFactory &connectDevices, const DeviceWorldWrapper &wrapDeviceWorld) {
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
          std::unique_ptr<comm::Communicator> wrapped;
          if (wrapDeviceWorld)
            wrapped = wrapDeviceWorld(rank, deviceWorld.communicator(rank));
          return errors[static_cast<size_t>(rank)] =
                     runRank(rank, hostWorld, wrapped ? wrapped.get() : &deviceWorld.communicator(rank));
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
                const DeviceWorldFactory &connectDevices, const DeviceWorldWrapper &wrapDeviceWorld) {
  return runAll(options, makeBackend, connectDevices, wrapDeviceWorld);
}

} // namespace megatron::train
