//===- Run.cpp - One rank's training loop: setting up, and the loop ------===//
//
// What a rank does from its plan to its last iteration (Run.h).
//
//===----------------------------------------------------------------------===//

#include "Run.h"

#include "Generate.h"
#include "Shards.h"

#include "megatron/Support/AtomicFile.h"
#include "runtime/device/SameDeviceCommunicator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace megatron::train {

int64_t peakResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stoll(line.substr(6)) * 1024;
  return 0;
}

std::string checkSaveDirectory(const std::string &dir) {
  ::mkdir(dir.c_str(), 0777);
  std::string probe = dir + "/.megatron-write-test";
  if (std::string error = writeFileAtomically(probe, "ok\n"); !error.empty())
    return "--save: the directory '" + dir + "' is not writable: " + error;
  ::unlink(probe.c_str());
  return {};
}

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

} // namespace megatron::train
