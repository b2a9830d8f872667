//===- TrainStepBench.cpp - One training step of a compiled plan ------------===//
//
// Times one full training iteration of a plan, the work megatron-run does per iteration with one micro-batch
// (runtime/train/Trainer.cpp, Run::trainIteration):
//
//   engine.zero(grads); engine.run("train_step")      forward, loss, backward, parameter gradients
//   cpu::globalNorm over every gradient                the global gradient norm
//   cpu::scaleTensors when clip / (norm + 1e-6) < 1    clipping (--clip-grad 1.0, Megatron's default)
//   cpu::adamwStep for every parameter                 AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, decay 0.01)
//
// with cpu::setNumThreads(T) for T = 1 and 2 (BM_TrainStep/1, BM_TrainStep/2). The engine is created after the
// thread count is set, as megatron-run does (attention's workspace is sized for it). Parameters are initialised
// as megatron-run initialises them (train::initializeParameters); the batch is fixed: random tokens and labels
// below the vocabulary, an all-ones loss mask. Two untimed steps come first.
//
// Besides Google Benchmark's mean, each benchmark reports the median, minimum and quartiles of the individual
// steps' wall-clock times (counters median_ms, min_ms, p25_ms, p75_ms), which is what bench/train-step-vs-pytorch.sh
// compares with PyTorch.
//
// Run: build/bin/train-step-bench --plan=gpt.plan [--steps=N] [--benchmark_filter=BM_TrainStep/1]
//      (or MEGATRON_TRAIN_STEP_PLAN=gpt.plan build/bin/train-step-bench). --steps fixes the number of timed steps;
//      without it Google Benchmark's --benchmark_min_time (seconds) decides.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/data/SplitMix.h"
#include "runtime/engine/Engine.h"
#include "runtime/train/TrainState.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// OpenBLAS's name for the kernels it chose (OPENBLAS_CORETYPE, or what it detected), reported in the context.
extern "C" char *openblas_get_corename(void);

namespace {

using namespace megatron;

std::string planPath;

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "train-step-bench: %s\n", message.c_str());
  std::exit(1);
}

/// A plan's engine with initialised parameters and a fixed GPT batch in its inputs.
struct Setup {
  std::unique_ptr<runtime::Engine> engine;
  std::vector<float *> grads;
  std::vector<cpu::Index> sizes;
  int64_t tokens = 0;
};

Setup load() {
  std::string error;
  std::optional<plan::Plan> loaded = plan::readPlan(planPath, error);
  if (!loaded)
    die(error);
  if (!loaded->program("train_step"))
    die("plan '" + planPath + "' has no train_step program");
  if (loaded->model.numMicroBatches != 1)
    die("plan '" + planPath + "' has " + std::to_string(loaded->model.numMicroBatches) +
        " micro-batches; this benchmark times one");
  Setup s;
  s.engine = runtime::Engine::create(std::move(*loaded), error);
  if (!s.engine)
    die("plan '" + planPath + "': " + error);
  runtime::Engine &engine = *s.engine;
  train::initializeParameters(engine, 1234);

  int64_t vocab = 0;
  for (const plan::Param &p : engine.plan().params)
    if (p.name == "embedding.word_embeddings.weight")
      vocab = engine.buffer(p.buffer).shape[0];
  if (vocab <= 0)
    die("plan '" + planPath + "' has no embedding.word_embeddings.weight");
  data::SplitMix64 random(1234, 0);
  for (const plan::Input &in : engine.plan().inputs) {
    int64_t n = engine.buffer(in.buffer).numElements();
    if (in.name == "tokens" || in.name == "labels") {
      int32_t *ids = engine.as<int32_t>(in.buffer);
      for (int64_t i = 0; i < n; ++i)
        ids[i] = static_cast<int32_t>(random.next() % static_cast<uint64_t>(vocab));
      if (in.name == "tokens")
        s.tokens = n;
    } else if (in.name == "loss_mask") {
      std::fill(engine.as<float>(in.buffer), engine.as<float>(in.buffer) + n, 1.0f);
    } else {
      die("plan '" + planPath + "' needs input '" + in.name + "'; this benchmark feeds GPT plans only");
    }
  }
  for (const plan::Param &p : engine.plan().params) {
    s.grads.push_back(engine.as<float>(p.grad));
    s.sizes.push_back(engine.buffer(p.grad).numElements());
  }
  return s;
}

/// One iteration, as Run::trainIteration does it with one micro-batch and --clip-grad 1.0.
double trainStep(Setup &s, int64_t iteration) {
  runtime::Engine &engine = *s.engine;
  engine.zero(plan::Arena::Grads);
  runtime::RunContext context{true, runtime::dropoutSeedFor(1234, iteration, 0)};
  if (std::string error = engine.run("train_step", context); !error.empty())
    die(error);
  double loss = engine.loss("train_step");
  if (!std::isfinite(loss))
    die("the loss is not finite at iteration " + std::to_string(iteration));

  const double clipGrad = 1.0;
  double gradNorm = cpu::globalNorm<float>(static_cast<int>(s.grads.size()), s.grads.data(), s.sizes.data());
  double coefficient = clipGrad / (gradNorm + 1e-6);
  if (coefficient < 1.0)
    cpu::scaleTensors<float>(static_cast<int>(s.grads.size()), s.grads.data(), s.sizes.data(),
                             static_cast<float>(coefficient));
  cpu::AdamWConfig adam{1e-4, 0.9, 0.999, 1e-8, 0.01, iteration};
  for (const plan::Param &p : engine.plan().params)
    cpu::adamwStep<float>(engine.buffer(p.buffer).numElements(), adam, p.weightDecay, engine.as<float>(p.buffer),
                          engine.as<float>(p.grad), engine.as<float>(p.expAvg), engine.as<float>(p.expAvgSq));
  return loss;
}

double quantile(std::vector<double> sorted, double q) {
  double position = q * static_cast<double>(sorted.size() - 1);
  size_t below = static_cast<size_t>(position);
  size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

void BM_TrainStep(benchmark::State &state) {
  int threads = static_cast<int>(state.range(0));
  cpu::setNumThreads(threads);
  Setup s = load();
  int64_t iteration = 0;
  double firstLoss = trainStep(s, ++iteration);
  trainStep(s, ++iteration);

  std::vector<double> stepMs;
  double loss = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    loss = trainStep(s, ++iteration);
    stepMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(stepMs.begin(), stepMs.end());
  state.counters["median_ms"] = quantile(stepMs, 0.5);
  state.counters["min_ms"] = stepMs.front();
  state.counters["p25_ms"] = quantile(stepMs, 0.25);
  state.counters["p75_ms"] = quantile(stepMs, 0.75);
  state.counters["first_loss"] = firstLoss;
  state.counters["last_loss"] = loss;
  state.counters["threads"] = cpu::numThreads();
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(s.tokens) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

} // namespace

int main(int argc, char **argv) {
  // --plan=PATH and --steps=N are ours; everything else goes to Google Benchmark.
  std::vector<char *> rest = {argv[0]};
  long steps = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--plan=", 7) == 0)
      planPath = argv[i] + 7;
    else if (std::strcmp(argv[i], "--plan") == 0 && i + 1 < argc)
      planPath = argv[++i];
    else if (std::strncmp(argv[i], "--steps=", 8) == 0)
      steps = std::strtol(argv[i] + 8, nullptr, 10);
    else
      rest.push_back(argv[i]);
  }
  if (planPath.empty())
    if (const char *env = std::getenv("MEGATRON_TRAIN_STEP_PLAN"))
      planPath = env;
  if (planPath.empty())
    die("give the plan with --plan=PATH or MEGATRON_TRAIN_STEP_PLAN (megatron-opt --mt-autodiff "
        "--mt-plan=output=PATH)");
  benchmark::internal::Benchmark *bench = benchmark::RegisterBenchmark("BM_TrainStep", BM_TrainStep);
  bench->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  if (steps > 0)
    bench->Iterations(steps);
  int restCount = static_cast<int>(rest.size());
  benchmark::Initialize(&restCount, rest.data());
  const char *coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
  benchmark::AddCustomContext("plan", planPath);
  if (benchmark::ReportUnrecognizedArguments(restCount, rest.data()))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
