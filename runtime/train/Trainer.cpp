//===- Trainer.cpp - The training loop of megatron-run ---------------------===//

#include "Trainer.h"

#include "Generate.h"
#include "LossCurve.h"
#include "TrainState.h"

#include "megatron/Support/AtomicFile.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/data/GptBatchLoader.h"
#include "runtime/engine/Engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
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

class Run {
public:
  Run(const TrainOptions &options) : opts(options) {}
  int main();

private:
  std::string setUp();
  std::string trainIteration(int64_t iteration, double &loss, double &gradNorm);
  std::string evaluate(double &loss);
  void feed(const data::GptBatch &batch);
  void log(int64_t iteration, double loss, double gradNorm, double lr, double seconds, int64_t iterations);
  void progress(int64_t iteration, double loss);
  int fail(const std::string &message) {
    if (progressShown)
      std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "megatron-run: error: %s\n", message.c_str());
    return 1;
  }

  const TrainOptions &opts;
  std::unique_ptr<runtime::Engine> engine;
  GptInputs inputs;
  std::unique_ptr<data::GptBatchLoader> train, validation;
  int64_t microBatches = 1, batchTokens = 0, startIteration = 0;
  double floor = 0;
  std::vector<float *> grads;    // every parameter's gradient, for the norm and clipping
  std::vector<cpu::Index> sizes; // their element counts
  bool showProgress = false, progressShown = false;
  LossCurve curve;
};

std::string Run::setUp() {
  std::string error;
  std::optional<plan::Plan> loaded = plan::readPlan(opts.plan, error);
  if (!loaded)
    return error;
  if (!loaded->program("train_step") || !loaded->program("forward"))
    return "plan '" + opts.plan + "' has no train_step and forward programs";
  if (std::string problem = findGptInputs(*loaded, inputs); !problem.empty())
    return "plan '" + opts.plan + "': " + problem;
  cpu::setNumThreads(opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency()));
  engine = runtime::Engine::create(std::move(*loaded), error);
  if (!engine)
    return "plan '" + opts.plan + "': " + error;

  for (const plan::Param &p : engine->plan().params) {
    grads.push_back(engine->as<float>(p.grad));
    sizes.push_back(engine->buffer(p.grad).numElements());
  }
  const std::vector<int64_t> &shape = engine->buffer(inputs.tokens).shape;
  microBatches = engine->plan().model.numMicroBatches;
  batchTokens = shape[0] * shape[1] * microBatches;
  train = std::make_unique<data::GptBatchLoader>(data::GptBatchLoaderOptions{opts.seed, data::Split::Train, shape[1],
                                                                             shape[0]});
  validation = std::make_unique<data::GptBatchLoader>(
      data::GptBatchLoaderOptions{opts.seed, data::Split::Validation, shape[1], shape[0]});
  floor = train->floor();
  int64_t corpusVocab = static_cast<int64_t>(train->language().vocabulary().size());
  int64_t modelVocab = 0;
  for (const plan::Param &p : engine->plan().params)
    if (p.name == "embedding.word_embeddings.weight")
      modelVocab = engine->buffer(p.buffer).shape[0];
  if (modelVocab < corpusVocab)
    return "the model's vocabulary (" + std::to_string(modelVocab) + ") is smaller than the built-in corpus's (" +
           std::to_string(corpusVocab) + "); compile it with megatron-model --vocab-size " +
           std::to_string(corpusVocab);

  if (!opts.save.empty())
    if (std::string problem = checkSaveDirectory(opts.save); !problem.empty())
      return problem;
  initializeParameters(*engine, opts.seed);
  if (!opts.load.empty()) {
    ResumeState state;
    bool found = false;
    if (std::string problem = loadTrainingCheckpoint(*engine, opts.load, state, found); !problem.empty())
      return "--load: " + problem;
    if (found) {
      startIteration = state.iteration;
      train->restore(state.trainSamples);
      std::printf("loaded checkpoint iteration %lld from %s\n", static_cast<long long>(startIteration),
                  opts.load.c_str());
    } else {
      std::printf("no checkpoint in %s: starting from scratch\n", opts.load.c_str());
    }
  }
  showProgress = opts.progress == 1 || (opts.progress < 0 && ::isatty(STDOUT_FILENO));
  curve.floor = floor;
  curve.title = engine->plan().model.family + ", " + std::to_string(engine->plan().model.parameters) +
                " parameters, built-in corpus";
  return {};
}

void Run::feed(const data::GptBatch &batch) {
  std::copy(batch.tokens.begin(), batch.tokens.end(), engine->as<int32_t>(inputs.tokens));
  std::copy(batch.labels.begin(), batch.labels.end(), engine->as<int32_t>(inputs.labels));
  std::copy(batch.lossMask.begin(), batch.lossMask.end(), engine->as<float>(inputs.lossMask));
}

std::string Run::trainIteration(int64_t iteration, double &loss, double &gradNorm) {
  engine->zero(plan::Arena::Grads);
  double sum = 0;
  for (int64_t m = 0; m < microBatches; ++m) {
    feed(train->next());
    runtime::RunContext context{true, runtime::dropoutSeedFor(opts.seed, iteration, m)};
    if (std::string error = engine->run("train_step", context); !error.empty())
      return "iteration " + std::to_string(iteration) + ", micro-batch " + std::to_string(m) + ": " + error;
    sum += engine->loss("train_step");
  }
  loss = sum / static_cast<double>(microBatches);
  if (!std::isfinite(loss))
    return "iteration " + std::to_string(iteration) + ": the loss is " + std::to_string(loss) +
           "; lower --lr or raise --lr-warmup-iters";

  // Clipping by the global norm, as Megatron: scale by clip / (norm + 1e-6) when that is below 1.
  gradNorm = cpu::globalNorm<float>(static_cast<int>(grads.size()), grads.data(), sizes.data());
  if (opts.clipGrad > 0) {
    double coefficient = opts.clipGrad / (gradNorm + 1e-6);
    if (coefficient < 1.0)
      cpu::scaleTensors<float>(static_cast<int>(grads.size()), grads.data(), sizes.data(),
                               static_cast<float>(coefficient));
  }
  cpu::AdamWConfig adam{opts.schedule.at(iteration - 1), opts.adamBeta1, opts.adamBeta2, opts.adamEps,
                        opts.weightDecay, iteration};
  for (const plan::Param &p : engine->plan().params)
    cpu::adamwStep<float>(engine->buffer(p.buffer).numElements(), adam, p.weightDecay, engine->as<float>(p.buffer),
                          engine->as<float>(p.grad), engine->as<float>(p.expAvg), engine->as<float>(p.expAvgSq));
  return {};
}

std::string Run::evaluate(double &loss) {
  // The same validation samples every time, so that the points of the curve compare.
  int64_t batches = opts.evalIters * microBatches, size = engine->buffer(inputs.tokens).shape[0];
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    feed(validation->batch(static_cast<uint64_t>(i * size)));
    if (std::string error = engine->run("forward", runtime::RunContext{false, 0}); !error.empty())
      return "evaluation: " + error;
    sum += engine->loss("forward");
  }
  loss = sum / static_cast<double>(batches);
  return {};
}

void Run::progress(int64_t iteration, double loss) {
  if (!showProgress)
    return;
  int width = 30;
  int done = static_cast<int>(width * iteration / std::max<int64_t>(opts.trainIters, 1));
  std::printf("\r [%s%s] %lld/%lld  loss %.4f  (floor %.4f) ", std::string(done, '#').c_str(),
              std::string(width - done, ' ').c_str(), static_cast<long long>(iteration),
              static_cast<long long>(opts.trainIters), loss, floor);
  std::fflush(stdout);
  progressShown = true;
}

void Run::log(int64_t iteration, double loss, double gradNorm, double lr, double seconds, int64_t iterations) {
  if (progressShown) {
    std::printf("\r%*s\r", 80, "");
    progressShown = false;
  }
  double perIteration = seconds / std::max<int64_t>(iterations, 1);
  std::printf(" iteration %8lld/%8lld | consumed samples: %10lld | elapsed time per iteration (ms): %.1f | "
              "tokens/s: %.0f | learning rate: %.3E | lm loss: %.6E | grad norm: %.3f | floor: %.4f\n",
              static_cast<long long>(iteration), static_cast<long long>(opts.trainIters),
              static_cast<long long>(train->state()), perIteration * 1000.0, batchTokens / perIteration, lr, loss,
              gradNorm, floor);
  std::fflush(stdout);
}

int Run::main() {
  if (std::string error = setUp(); !error.empty())
    return fail(error);
  const plan::Plan &plan = engine->plan();
  std::printf("megatron-run: %s, %llu parameters, %lld micro-batch(es) of %lld x %lld tokens per iteration, "
              "%d threads\n",
              plan.model.family.c_str(), static_cast<unsigned long long>(plan.model.parameters),
              static_cast<long long>(microBatches), static_cast<long long>(engine->buffer(inputs.tokens).shape[0]),
              static_cast<long long>(engine->buffer(inputs.tokens).shape[1]), cpu::numThreads());
  std::printf("data: built-in synthetic language, vocabulary %zu, entropy floor %.4f nats/token for this sequence "
              "length\n",
              train->language().vocabulary().size(), floor);

  std::string lossLog = "iteration,loss,lr,grad_norm,validation_loss\n";
  auto runStart = Clock::now(), intervalStart = runStart;
  double intervalLoss = 0, lastLoss = 0, lastValidation = -1;
  int64_t intervalIterations = 0, trained = 0;
  for (int64_t iteration = startIteration + 1; iteration <= opts.trainIters; ++iteration) {
    double loss = 0, gradNorm = 0;
    if (std::string error = trainIteration(iteration, loss, gradNorm); !error.empty())
      return fail(error);
    ++trained;
    lastLoss = loss;
    intervalLoss += loss;
    ++intervalIterations;
    curve.train.push_back({iteration, loss});
    char row[160];
    std::snprintf(row, sizeof row, "%lld,%.17g,%.17g,%.17g,", static_cast<long long>(iteration), loss,
                  opts.schedule.at(iteration - 1), gradNorm);
    lossLog += row;
    progress(iteration, loss);
    if (iteration % opts.logInterval == 0 || iteration == opts.trainIters) {
      log(iteration, intervalLoss / intervalIterations, gradNorm, opts.schedule.at(iteration - 1),
          secondsSince(intervalStart), intervalIterations);
      intervalLoss = 0;
      intervalIterations = 0;
      intervalStart = Clock::now();
    }
    if (iteration % opts.evalInterval == 0 || iteration == opts.trainIters) {
      if (std::string error = evaluate(lastValidation); !error.empty())
        return fail(error);
      curve.validation.push_back({iteration, lastValidation});
      char validation[32];
      std::snprintf(validation, sizeof validation, "%.17g", lastValidation);
      lossLog += validation;
      std::printf(" validation loss at iteration %lld: %.6E | floor %.4f | gap %.4f nats/token\n",
                  static_cast<long long>(iteration), lastValidation, floor, lastValidation - floor);
      intervalStart = Clock::now(); // evaluation is not training time
    }
    lossLog += "\n";
    bool exitNow = opts.exitInterval > 0 && iteration % opts.exitInterval == 0 && iteration < opts.trainIters;
    bool saveNow = !opts.save.empty() && ((opts.saveInterval > 0 && iteration % opts.saveInterval == 0) ||
                                          iteration == opts.trainIters || exitNow);
    if (saveNow) {
      ResumeState state{iteration, train->state(), {{"seed", opts.seed}, {"consumed_samples", train->state()}}};
      if (std::string error = saveTrainingCheckpoint(*engine, opts.save, state); !error.empty())
        return fail(error);
      std::printf(" saved checkpoint at iteration %lld to %s\n", static_cast<long long>(iteration),
                  opts.save.c_str());
      intervalStart = Clock::now();
    }
    if (exitNow) {
      std::printf(" exiting after iteration %lld (--exit-interval)\n", static_cast<long long>(iteration));
      break;
    }
  }

  double seconds = secondsSince(runStart);
  if (trained > 0) {
    std::printf("\nsummary: %lld iterations in %.1f s (%.0f tokens/s); final training loss %.4f, ",
                static_cast<long long>(trained), seconds, trained * batchTokens / seconds, lastLoss);
    if (lastValidation >= 0)
      std::printf("validation loss %.4f, entropy floor %.4f (gap %.4f nats/token)\n", lastValidation, floor,
                  lastValidation - floor);
    else
      std::printf("entropy floor %.4f (not evaluated)\n", floor);
    std::printf("memory: planned %s (parameters, gradients, AdamW state, inputs, activations), measured peak "
                "resident %s\n",
                mebibytes(engine->allocatedBytes()).c_str(), mebibytes(peakResidentBytes()).c_str());
  }
  if (trained > 1)
    std::printf("\n%s", renderText(curve).c_str());
  if (!opts.lossLog.empty())
    if (std::string error = writeFileAtomically(opts.lossLog, lossLog); !error.empty())
      return fail("--loss-log: " + error);
  if (!opts.lossCurve.empty() && trained > 0) {
    if (std::string error = writeFileAtomically(opts.lossCurve, renderSvg(curve)); !error.empty())
      return fail("--loss-curve: " + error);
    std::printf("loss curve: %s\n", opts.lossCurve.c_str());
  }

  if (opts.generate > 0) {
    const data::Vocabulary &vocab = train->language().vocabulary();
    SamplingOptions sampling{opts.greedy, opts.temperature, opts.topK, opts.topP, opts.seed};
    size_t length = opts.generateTokens > 0 ? static_cast<size_t>(opts.generateTokens) + 1
                                            : static_cast<size_t>(engine->buffer(inputs.tokens).shape[1]);
    std::printf("\nsamples (%s):\n", opts.greedy ? "greedy"
                                                 : ("temperature " + std::to_string(opts.temperature) + ", top-k " +
                                                    std::to_string(opts.topK) + ", top-p " +
                                                    std::to_string(opts.topP))
                                                       .c_str());
    for (int sample = 0; sample < opts.generate; ++sample) {
      std::vector<int32_t> tokens = {train->language().endOfDocument()};
      if (std::string error = generate(*engine, static_cast<int64_t>(vocab.size()), sampling,
                                       static_cast<uint64_t>(sample), length, tokens);
          !error.empty())
        return fail("--generate: " + error);
      // A sample is one document: it ends at the first end-of-document token the model writes.
      auto end = std::find(tokens.begin() + 1, tokens.end(), train->language().endOfDocument());
      std::printf("  %d. %s\n", sample + 1, vocab.detokenize(tokens.data() + 1, end - tokens.begin() - 1).c_str());
    }
  }
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
  check(o.logInterval > 0, "--log-interval must be positive");
  check(o.evalInterval > 0, "--eval-interval must be positive");
  check(o.evalIters > 0, "--eval-iters must be positive");
  check(o.saveInterval >= 0, "--save-interval must not be negative");
  check(o.exitInterval >= 0, "--exit-interval must not be negative");
  check(o.saveInterval == 0 || !o.save.empty(), "--save-interval needs --save");
  check(o.generate >= 0 && o.generateTokens >= 0, "--generate and --generate-tokens must not be negative");
  check(o.temperature > 0, "--temperature must be positive");
  check(o.topK >= 0, "--top-k must not be negative");
  check(o.topP > 0 && o.topP <= 1, "--top-p must be in (0, 1]");
  return problems;
}

int runTraining(const TrainOptions &options) { return Run(options).main(); }

} // namespace megatron::train
