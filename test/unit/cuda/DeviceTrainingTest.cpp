//===- DeviceTrainingTest.cpp - megatron-run's loop on the device engine against the CPU ---===//
//
// The trainer (runtime/train, runTraining) with --device cuda over the host simulator's backend, against the same
// run on the CPU engine: the per-iteration losses and gradient norms of its --loss-log, the validation loss, fp16's
// skipped steps, the samples generated after training, and a checkpoint the device run saves that a CPU run
// resumes from. The whole loop is the CPU trainer's; only the compute differs, so what these runs compare is that
// the device runs the same programs on the same inputs and steps the same optimizer (the numerics of each program
// are DeviceEngineTest's). The model is tiny and the runs short: the simulator runs each thread as a fiber.
// Parallel plans (tensor with sequence parallelism, data, pipeline under 1F1B and interleaved 1F1B) run their ranks
// as threads, each on its own stream of one simulated device (SharedSimulatedDevice.h), against the CPU trainer
// running the same plan's ranks as threads: the losses, norms and checkpoints of every layout are the
// layout-independent run's, so a collective bound wrongly, a norm counted twice or a pipeline message out of order
// shows in them. The distributed optimizer (ZeRO-1) is the CPU trainer's on the device: reduce-scatter, chunked
// AdamW and all-gather. A parallel device run prints rank 0's communication time as the CPU run does, from markers
// the device engine records around its collectives and pipeline messages. Every parallel device run's world has
// NCCL's point-to-point semantics (InOrderP2PCommunicator.h: untagged, in issue order, rendezvous), so a pipeline
// schedule whose messages the device engine issued in an order that would hang on GPUs fails here, naming the
// deadlock.
//
//===----------------------------------------------------------------------===//

#include "InOrderP2PCommunicator.h"
#include "SharedSimulatedDevice.h"
#include "TestModels.h"
#include "UniqueTempDir.h"

#include "sim/SimulatedBackend.h"

#include "runtime/device/ForwardingBackend.h"
#include "runtime/train/Trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

using namespace megatron;

namespace {

/// A GPT of one layer, hidden 32, sequence 8 and two micro-batches of 2 per iteration, with the built-in corpus's
/// vocabulary (215), in f32 or with --mt-mixed-precision `precision`.
const plan::Plan &tinyGpt(const std::string &precision) {
  static std::map<std::string, plan::Plan> plans;
  auto found = plans.find(precision);
  if (found != plans.end())
    return found->second;
  ModelConfig c;
  c.numLayers = 1;
  c.hiddenSize = 32;
  c.numAttentionHeads = 2;
  c.seqLength = 8;
  c.microBatchSize = 2;
  c.globalBatchSize = 4;
  c.vocabSize = 215;
  c.makeVocabSizeDivisibleBy = 8;
  return plans.emplace(precision, test::compileModel(c, precision.c_str())).first->second;
}

/// tinyGpt's model with a layer per model chunk (pipeline stage, or virtual stage of an interleaved pipeline),
/// compiled for `layout` (f32 unless it names a precision): one plan per stage.
const std::vector<plan::Plan> &tinyParallelGpt(const test::ParallelLayout &layout) {
  static std::map<std::tuple<int64_t, bool, int64_t, bool, int64_t, std::string, int64_t>, std::vector<plan::Plan>>
      plans;
  auto key = std::make_tuple(layout.tensor, layout.sequence, layout.data, layout.distributedOptimizer, layout.stages,
                             std::string(layout.precision), layout.virtualStages);
  auto found = plans.find(key);
  if (found != plans.end())
    return found->second;
  ModelConfig c;
  c.numLayers = std::max<int64_t>(1, layout.stages * layout.virtualStages);
  c.hiddenSize = 32;
  c.numAttentionHeads = 2;
  c.seqLength = 8;
  c.microBatchSize = 2;
  c.globalBatchSize = 4;
  c.vocabSize = 215;
  c.makeVocabSizeDivisibleBy = 8;
  c.tensorModelParallelSize = layout.tensor; // pads the vocabulary to a multiple of 8 x the ranks
  return plans.emplace(key, test::compileParallelModel(c, layout)).first->second;
}

/// The kernels of these plans, compiled for the simulator once and cached in the build tree.
cudasim::KernelLibrary &kernelLibrary() {
  static cudasim::KernelLibrary library(MEGATRON_SIM_CACHE);
  return library;
}

/// The copies between host and device in a run, each way.
struct Traffic {
  int toDevice = 0, toHost = 0;
};

/// The simulator's backend, counting the copies into `traffic`.
class CountingBackend final : public cudasim::SimulatedBackend {
public:
  explicit CountingBackend(Traffic &traffic)
      : SimulatedBackend(kernelLibrary(), int(std::max(1u, std::thread::hardware_concurrency()))),
        traffic(traffic) {}
  std::string copyToDevice(void *device, const void *host, std::size_t bytes) override {
    ++traffic.toDevice;
    return SimulatedBackend::copyToDevice(device, host, bytes);
  }
  std::string copyToHost(void *host, const void *device, std::size_t bytes) override {
    ++traffic.toHost;
    return SimulatedBackend::copyToHost(host, device, bytes);
  }

private:
  Traffic &traffic;
};

/// A fresh directory for a test's plans, logs and checkpoints, removed afterwards.
struct TempDir {
  std::string path = test::uniqueTempDir("device-training").string();
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

/// One row of --loss-log.
struct Row {
  int64_t iteration = 0;
  double loss = 0, lr = 0, gradNorm = 0, validation = NAN;
};

struct Outcome {
  int exitCode = -1;
  std::string output; // standard output
  std::vector<Row> rows;
  Traffic traffic; // on the device
  double seconds = 0;
};

std::vector<Row> readLossLog(const std::string &path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line); // the header
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');)
      fields.push_back(cell);
    Row row;
    row.iteration = std::stoll(fields.at(0));
    row.loss = std::stod(fields.at(1));
    row.lr = std::stod(fields.at(2));
    row.gradNorm = std::stod(fields.at(3));
    if (fields.size() > 4 && !fields[4].empty())
      row.validation = std::stod(fields[4]);
    rows.push_back(row);
  }
  return rows;
}

/// Training options for `stages` (a plan, or one per pipeline stage) written into `dir`: quiet, evaluating one
/// global batch at the end.
train::TrainOptions optionsFor(const std::vector<plan::Plan> &stages, const TempDir &dir, const std::string &name,
                               int64_t iterations) {
  const std::string path = dir.path + "/" + name + ".plan";
  std::ofstream(path) << plan::toJson(stages);
  train::TrainOptions options;
  options.plan = path;
  options.trainIters = iterations;
  options.schedule.lr = 3e-3;
  options.schedule.warmupIters = 1;
  options.schedule.decayIters = iterations;
  options.logInterval = 1000;
  options.evalInterval = 1000;
  options.evalIters = 1;
  options.threads = 1;
  options.progress = 0;
  options.lossLog = dir.path + "/" + name + ".csv";
  return options;
}

train::TrainOptions optionsFor(const plan::Plan &plan, const TempDir &dir, const std::string &name,
                               int64_t iterations) {
  return optionsFor(std::vector<plan::Plan>{plan}, dir, name, iterations);
}

/// Trains as `options` say, on the CPU or on the simulator: a plan of one rank on a backend of its own (counting
/// the copies), the `ranks` of a parallel plan each on its own stream of one simulated device, whose world's
/// point-to-point calls have NCCL's semantics.
Outcome train(train::TrainOptions options, bool onDevice, int ranks = 1) {
  options.device = onDevice ? "cuda" : "cpu";
  Outcome outcome;
  std::unique_ptr<test::SharedSimulatedDevice> shared; // the ranks' one device, made with the first stream
  // A long bound: a rank may compile a kernel for the simulator while its peer waits; a deadlock where every rank
  // waits is reported at once.
  test::InOrderP2PWorld inOrder(ranks, std::chrono::seconds(120));
  train::DeviceWorldWrapper strict;
  if (onDevice && ranks > 1)
    strict = [&](int rank, comm::Communicator &world) { return inOrder.wrap(world, rank); };
  int made = 0;
  testing::internal::CaptureStdout();
  const auto start = std::chrono::steady_clock::now();
  outcome.exitCode =
      train::runTraining(options, [&](int device, std::string &) -> std::unique_ptr<device::DeviceBackend> {
        EXPECT_EQ(device, 0) << "ranks as threads share device 0";
        EXPECT_LT(made++, ranks) << "a backend per rank";
        if (ranks == 1)
          return std::make_unique<CountingBackend>(outcome.traffic);
        if (!shared)
          shared = std::make_unique<test::SharedSimulatedDevice>(kernelLibrary());
        return std::make_unique<test::SharedSimulatedDevice::Stream>(*shared);
      },
      {}, strict);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  outcome.output = testing::internal::GetCapturedStdout();
  if (outcome.exitCode == 0)
    outcome.rows = readLossLog(options.lossLog);
  return outcome;
}

/// The relative difference of two figures; two NaNs (both runs skipped the step) agree.
double relative(double device, double cpu) {
  if (std::isnan(device) && std::isnan(cpu))
    return 0;
  return std::fabs(device - cpu) / std::max(std::fabs(cpu), 1e-30);
}

struct Worst {
  double loss = 0, gradNorm = 0, validation = 0;
};

/// How far a device run may be from the CPU trainer's: f32 differs in summation order only.
constexpr Worst kF32Run{/*loss=*/1e-5, /*gradNorm=*/1e-4, /*validation=*/1e-5};

/// The rows of both runs side by side, printed, and their worst relative differences.
Worst compareRows(const char *what, const std::vector<Row> &device, const std::vector<Row> &cpu) {
  Worst worst;
  EXPECT_EQ(device.size(), cpu.size()) << what;
  for (size_t i = 0; i < std::min(device.size(), cpu.size()); ++i) {
    EXPECT_EQ(device[i].iteration, cpu[i].iteration);
    EXPECT_EQ(device[i].lr, cpu[i].lr) << what << ": the schedule is the host's on both";
    worst.loss = std::max(worst.loss, relative(device[i].loss, cpu[i].loss));
    worst.gradNorm = std::max(worst.gradNorm, relative(device[i].gradNorm, cpu[i].gradNorm));
    EXPECT_EQ(std::isnan(device[i].validation), std::isnan(cpu[i].validation));
    if (!std::isnan(cpu[i].validation))
      worst.validation = std::max(worst.validation, relative(device[i].validation, cpu[i].validation));
    std::printf("  %s iteration %lld: loss CPU %.9g, device %.9g; grad norm CPU %.9g, device %.9g\n", what,
                static_cast<long long>(cpu[i].iteration), cpu[i].loss, device[i].loss, cpu[i].gradNorm,
                device[i].gradNorm);
  }
  std::printf("  %s: worst relative difference: loss %.3g, grad norm %.3g, validation loss %.3g\n", what, worst.loss,
              worst.gradNorm, worst.validation);
  return worst;
}

/// The communication time per iteration of a run's summary ("communication: 12.3 ms per iteration on rank 0 ..."),
/// or -1 where it prints none (one rank).
double communicationPerIteration(const std::string &output) {
  const std::string line = "\ncommunication: ";
  const size_t at = output.find(line);
  return at == std::string::npos ? -1 : std::stod(output.substr(at + line.size()));
}

/// Whether `plan`'s programs communicate (collectives, pipeline messages): what both engines time. Under the
/// distributed optimizer a replica's programs sum nothing over "dp" (the optimizer's exchanges are timed by neither).
bool communicates(const plan::Plan &plan) {
  for (const plan::Program &program : plan.programs)
    for (const plan::Step &step : program.steps)
      if (step.op == "all_reduce" || step.op == "all_gather" || step.op == "reduce_scatter" ||
          step.op == "all_reduce_grads" || step.op == "send" || step.op == "recv")
        return true;
  return false;
}

/// The lines of the samples printed after training.
std::string samples(const std::string &output) {
  size_t start = output.find("\nsamples (");
  return start == std::string::npos ? std::string() : output.substr(start);
}

// f32 with dropout: three iterations of two micro-batches, evaluation at the end, then a greedy sample.
TEST(CudaDeviceTraining, GptMatchesTheCpuTrainerAndGenerates) {
  TempDir dir;
  train::TrainOptions options = optionsFor(tinyGpt(""), dir, "gpt", 3);
  options.generate = 1;
  options.generateTokens = 5;
  options.greedy = true;
  Outcome cpu = train(options, false), device = train(options, true);
  ASSERT_EQ(cpu.exitCode, 0) << cpu.output;
  ASSERT_EQ(device.exitCode, 0) << device.output;
  EXPECT_NE(device.output.find("device: the host CUDA simulator"), std::string::npos) << device.output;
  Worst worst = compareRows("f32", device.rows, cpu.rows);
  EXPECT_LE(worst.loss, kF32Run.loss);
  EXPECT_LE(worst.gradNorm, kF32Run.gradNorm);
  EXPECT_LE(worst.validation, kF32Run.validation);
  EXPECT_FALSE(std::isnan(device.rows.back().validation)) << "the last iteration evaluates";
  // One rank communicates with nobody: neither run prints a communication time.
  EXPECT_EQ(communicationPerIteration(cpu.output), -1) << cpu.output;
  EXPECT_EQ(communicationPerIteration(device.output), -1) << device.output;
  EXPECT_EQ(device.output.find("| communication (ms)"), std::string::npos) << device.output;
  ASSERT_NE(samples(cpu.output), "") << cpu.output;
  EXPECT_EQ(samples(device.output), samples(cpu.output)) << "greedy decoding picks the same tokens";

  // Up: the optimizer's work lists and the initial parameters and moments once, then only inputs: 3 per
  // micro-batch (6 trained, 2 evaluated) and the tokens once per generated token. Down: at most a program's status words and its loss (or the logits row
  // sampled) per run, and the gradient norm per optimizer step.
  const int state = 3 * int(tinyGpt("").params.size()), microBatches = 3 * 2 + 2, tokens = 5;
  std::printf("  copies to the device %d, to the host %d\n", device.traffic.toDevice, device.traffic.toHost);
  EXPECT_EQ(device.traffic.toDevice, 1 + state + 3 * microBatches + tokens);
  EXPECT_LE(device.traffic.toHost, 2 * (microBatches + tokens) + 3);
}

// fp16 with dynamic loss scaling from 2^20 and a hysteresis of 1: the first steps overflow in f16 and are skipped,
// halving the scale each time, on both; the skipped iterations, the scales and the losses agree.
/// fp16 from a loss scale that overflows at first (2^20, hysteresis 1): both runs skip the same iterations and end
/// with the same scale, and the steps taken agree within fp16's rounding.
void expectTheSameLossScaling(const char *what, const std::vector<plan::Plan> &plans, int ranks) {
  TempDir dir;
  train::TrainOptions options = optionsFor(plans, dir, "fp16", 3);
  options.lossScale.anyGiven = true;
  options.lossScale.initial = 0x1p20;
  options.lossScale.hysteresis = 1;
  Outcome cpu = train(options, false), device = train(options, true, ranks);
  ASSERT_EQ(cpu.exitCode, 0) << cpu.output;
  ASSERT_EQ(device.exitCode, 0) << device.output;
  int skipped = 0;
  for (const Row &row : cpu.rows)
    skipped += std::isnan(row.gradNorm);
  EXPECT_GE(skipped, 1) << "the test wants a skipped step";
  EXPECT_LT(skipped, int(cpu.rows.size())) << "and a step taken";
  Worst worst = compareRows(what, device.rows, cpu.rows);
  EXPECT_LE(worst.loss, 1e-4);
  EXPECT_LE(worst.gradNorm, 1e-3);
  EXPECT_LE(worst.validation, 1e-4);
  // The loss scale and the skipped count (a multi-rank CPU run also logs its communication time after them).
  auto scaleLine = [](const std::string &output) {
    size_t at = output.find("| loss scale: ");
    if (at == std::string::npos)
      return std::string();
    const size_t end = std::min(output.find('\n', at), output.find(" | communication", at));
    return output.substr(at, end - at);
  };
  EXPECT_NE(scaleLine(cpu.output), "");
  EXPECT_EQ(scaleLine(device.output), scaleLine(cpu.output)) << "the same scale and skipped iterations";
}

TEST(CudaDeviceTraining, Fp16DynamicLossScalingSkipsTheSameSteps) {
  expectTheSameLossScaling("fp16", {tinyGpt("fp16")}, 1);
}

TEST(CudaDeviceTraining, Bf16MatchesTheCpuTrainer) {
  TempDir dir;
  train::TrainOptions options = optionsFor(tinyGpt("bf16"), dir, "bf16", 2);
  Outcome cpu = train(options, false), device = train(options, true);
  ASSERT_EQ(cpu.exitCode, 0) << cpu.output;
  ASSERT_EQ(device.exitCode, 0) << device.output;
  Worst worst = compareRows("bf16", device.rows, cpu.rows);
  // bf16 activations: a one-ulp difference in a rounding (2^-8) moves the loss by far less than that.
  EXPECT_LE(worst.loss, 1e-3);
  EXPECT_LE(worst.gradNorm, 1e-2);
  EXPECT_LE(worst.validation, 1e-3);
}


// The factory's error is the run's: --device cuda stops with it, --device auto says it and trains on the CPU.
TEST(CudaDeviceTraining, WithoutABackendCudaFailsAndAutoRunsOnTheCpu) {
  TempDir dir;
  train::TrainOptions options = optionsFor(tinyGpt(""), dir, "none", 1);
  auto none = [](int, std::string &error) -> std::unique_ptr<device::DeviceBackend> {
    error = "no CUDA device: none in this test";
    return nullptr;
  };
  for (const char *device : {"cuda", "auto"}) {
    options.device = device;
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    int code = train::runTraining(options, none);
    std::string output = testing::internal::GetCapturedStdout(), error = testing::internal::GetCapturedStderr();
    if (options.device == "cuda") {
      EXPECT_EQ(code, 1);
      EXPECT_NE(error.find("error: --device cuda: no CUDA device: none in this test (--device cpu runs on the CPU)"),
                std::string::npos)
          << error;
    } else {
      EXPECT_EQ(code, 0) << error;
      EXPECT_NE(error.find("--device auto: no CUDA device: none in this test; running on the CPU"), std::string::npos)
          << error;
      EXPECT_EQ(output.find("device: "), std::string::npos) << "no device line on the CPU";
      EXPECT_EQ(readLossLog(options.lossLog).size(), 1u);
    }
  }
}

} // namespace

namespace {

/// A rank's backend whose kernel launches fail from the `failAt`-th on: a device that fails in the middle of an
/// iteration, while its peers wait in collectives.
class FailingBackend final : public device::ForwardingBackend {
public:
  FailingBackend(std::unique_ptr<device::DeviceBackend> owned, int failAt)
      : ForwardingBackend(*owned), owned(std::move(owned)), failAt(failAt) {}
  std::string launch(const codegen::CudaKernel &kernel, void **args) override {
    if (++launches >= failAt)
      return "an injected fault launching " + kernel.name;
    return inner.launch(kernel, args);
  }

private:
  std::unique_ptr<device::DeviceBackend> owned; // `inner`
  int failAt, launches = 0;
};

/// The device run of a parallel plan's `ranks` against the CPU trainer's run of the same plan, with the tolerances
/// of the one-rank f32 test: the collectives add in rank order on both, so only the kernels' summation orders differ.
/// Two iterations by default, so that the second runs on the parameters the first step updated (the warm-up's
/// first step has a learning rate of 0: only the evaluation at the end sees the second step, a third iteration's
/// loss and norm see it too); with `generate`, a greedy sample after training (the logits program over the
/// tensor-parallel group) that must pick the same tokens.
void expectParallelRunMatches(const char *what, const std::vector<plan::Plan> &plans, int ranks, const char *banner,
                              bool generate = false, int64_t iterations = 2, const Worst &tolerance = kF32Run) {
  TempDir dir;
  train::TrainOptions options = optionsFor(plans, dir, "parallel", iterations);
  if (generate) {
    options.generate = 1;
    options.generateTokens = 3;
    options.greedy = true;
  }
  Outcome cpu = train(options, false), device = train(options, true, ranks);
  ASSERT_EQ(cpu.exitCode, 0) << cpu.output;
  ASSERT_EQ(device.exitCode, 0) << device.output;
  EXPECT_NE(device.output.find(banner), std::string::npos) << device.output;
  EXPECT_NE(device.output.find("the ranks' collectives through the same-device communicator"), std::string::npos)
      << device.output;
  std::printf("  %s: the CPU trainer %.1f s, the simulated device %.1f s\n", what, cpu.seconds, device.seconds);
  // Both print rank 0's time in its programs' collectives and pipeline messages: the CPU engine's clock, the
  // device's markers around the same steps (on the simulator the host's clock too, so waiting for the other ranks'
  // threads counts); none on a replica under the distributed optimizer, whose programs have no collective.
  const double cpuCommunication = communicationPerIteration(cpu.output),
               deviceCommunication = communicationPerIteration(device.output);
  std::printf("  %s: communication per iteration on rank 0: the CPU trainer %.1f ms, the simulated device %.1f ms\n",
              what, cpuCommunication, deviceCommunication);
  EXPECT_GE(cpuCommunication, 0.0) << cpu.output;
  if (communicates(plans.front())) {
    EXPECT_GT(deviceCommunication, 0.0) << device.output;
  } else {
    EXPECT_EQ(cpuCommunication, 0.0) << cpu.output;
    EXPECT_EQ(deviceCommunication, 0.0) << device.output;
  }
  EXPECT_NE(device.output.find("| communication (ms): "), std::string::npos) << device.output;
  Worst worst = compareRows(what, device.rows, cpu.rows);
  EXPECT_EQ(device.rows.size(), size_t(iterations));
  EXPECT_LE(worst.loss, tolerance.loss);
  EXPECT_LE(worst.gradNorm, tolerance.gradNorm);
  EXPECT_LE(worst.validation, tolerance.validation);
  EXPECT_FALSE(std::isnan(device.rows.back().validation)) << "the last iteration evaluates";
  if (generate) {
    ASSERT_NE(samples(cpu.output), "") << cpu.output;
    EXPECT_EQ(samples(device.output), samples(cpu.output)) << "greedy decoding picks the same tokens";
  }
}

// Two tensor-parallel ranks with sequence parallelism: the layers' all-reduces, gathers and scatters, the
// vocabulary-parallel loss, finalize_grads' sums of the norms' gradients, and the norm of each rank's shards (the
// replicated parameters counted on rank 0 only) added over "tp"; then generation, whose logits are gathered over
// "tp".
TEST(CudaDeviceTraining, TensorAndSequenceParallelMatchesTheCpuTrainer) {
  expectParallelRunMatches("tp 2 + sequence parallel", tinyParallelGpt({2, true}), 2,
                           "tensor parallel: 2, data parallel: 1 (2 ranks as threads", true);
}

// bf16 across four ranks, tp 2 + sequence parallel × dp 2 with the distributed optimizer: 16-bit activations
// all-reduced, gathered and scattered on the device, the tensor-core attention, the f32 master gradients
// reduce-scattered by the optimizer. The tolerances are the one-rank bf16 test's: a value now and then rounds to
// the neighbouring bf16 number on one backend and not the other, and the attention rounds its probabilities.
TEST(CudaDeviceTraining, Bf16TensorParallelWithTheDistributedOptimizerMatchesTheCpuTrainer) {
  test::ParallelLayout layout{2, true, 2, true};
  layout.precision = "bf16";
  expectParallelRunMatches("bf16, tp 2 + sequence parallel x dp 2, distributed optimizer", tinyParallelGpt(layout), 4,
                           "tensor parallel: 2, data parallel: 2 (4 ranks as threads", false, 2,
                           Worst{/*loss=*/1e-3, /*gradNorm=*/1e-2, /*validation=*/1e-3});
}

// fp16 over two pipeline stages: the overflow shows in the global norm summed over the stages, so both stages skip
// the same iterations, and the loss scale of the loss seed (on the last stage) scales the gradients that travel
// back to the first.
TEST(CudaDeviceTraining, Fp16PipelineParallelSkipsTheSameSteps) {
  test::ParallelLayout layout{1, false, 1, false, 2};
  layout.precision = "fp16";
  expectTheSameLossScaling("fp16, pp 2", tinyParallelGpt(layout), 2);
}

// Two replicas, one micro-batch each per iteration: the gradients summed over "dp" by finalize_grads, the losses
// and the validation loss summed over the replicas, the norm counted by the first replica only.
TEST(CudaDeviceTraining, DataParallelMatchesTheCpuTrainer) {
  expectParallelRunMatches("dp 2", tinyParallelGpt({1, false, 2}), 2,
                           "tensor parallel: 1, data parallel: 2 (2 ranks as threads");
}

// Two pipeline stages under 1F1B: the stash slots, the activations and their gradients as tagged messages, the tied
// embedding's gradient summed over the first and last stage and counted once in the norm.
TEST(CudaDeviceTraining, PipelineParallelMatchesTheCpuTrainer) {
  const std::vector<plan::Plan> &plans = tinyParallelGpt({1, false, 1, false, 2});
  ASSERT_EQ(plans.size(), 2u);
  expectParallelRunMatches("pp 2", plans, 2, "pipeline parallel: 2 stages (1F1B)");
}

/// Two pipeline stages of two model chunks each (a layer per chunk), for interleaved 1F1B, in `precision`, with
/// `tensor` ranks per stage (sequence parallel when there are two).
const std::vector<plan::Plan> &tinyInterleavedGpt(const char *precision = "", int64_t tensor = 1) {
  test::ParallelLayout layout{tensor, tensor > 1, 1, false, 2};
  layout.precision = precision;
  layout.virtualStages = 2;
  const std::vector<plan::Plan> &plans = tinyParallelGpt(layout);
  EXPECT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans.front().pipeline.virtualStages, 2);
  return plans;
}

constexpr const char *kInterleavedBanner = "pipeline parallel: 2 stages x 2 virtual (interleaved 1F1B)";

// Interleaved 1F1B: each stage runs its two chunks' programs (train_forward_chunkN, train_backward_chunkN), a
// micro-batch's activations cross the stages three times forward and three times back, the messages tagged by
// micro-batch and chunk, each chunk's stash in its own slots; the tied embedding's gradient sums over the first
// chunk of stage 0 and the last chunk of stage 1. Three iterations, so that the steps taken show in the losses.
TEST(CudaDeviceTraining, InterleavedPipelineMatchesTheCpuTrainer) {
  expectParallelRunMatches("pp 2 x 2 virtual", tinyInterleavedGpt(), 2, kInterleavedBanner, /*generate=*/true,
                           /*iterations=*/3);
}

// bf16 under interleaved 1F1B: 16-bit activations and their gradients as the messages between chunks. The one-rank
// bf16 test's iterations and tolerances.
TEST(CudaDeviceTraining, Bf16InterleavedPipelineMatchesTheCpuTrainer) {
  expectParallelRunMatches("bf16, pp 2 x 2 virtual", tinyInterleavedGpt("bf16"), 2, kInterleavedBanner,
                           /*generate=*/false, /*iterations=*/2,
                           Worst{/*loss=*/1e-3, /*gradNorm=*/1e-2, /*validation=*/1e-3});
}

// Two tensor-parallel ranks (sequence parallel) on each of two interleaved stages: the chunks' collectives over
// "tp" between their pipeline messages, four ranks.
TEST(CudaDeviceTraining, TensorParallelInterleavedPipelineMatchesTheCpuTrainer) {
  expectParallelRunMatches("tp 2 + sequence parallel x pp 2 x 2 virtual", tinyInterleavedGpt("", 2), 4,
                           kInterleavedBanner);
}

/// A device run of `plans` on `ranks` saves after iteration 2; the CPU trainer resumes the same plan from it, and
/// its iterations 3 and 4 must be those of a CPU run that never stopped: every rank's parameters and moments came
/// down and were assembled whole.
void expectDeviceCheckpointResumesOnTheCpu(const char *what, const std::vector<plan::Plan> &plans, int ranks) {
  TempDir dir;
  train::TrainOptions options = optionsFor(plans, dir, "resume", 4);
  Outcome reference = train(options, false);
  ASSERT_EQ(reference.exitCode, 0) << reference.output;
  options.save = dir.path + "/checkpoints";
  options.exitInterval = 2;
  Outcome first = train(options, true, ranks);
  ASSERT_EQ(first.exitCode, 0) << first.output;
  EXPECT_NE(first.output.find("saved checkpoint at iteration 2"), std::string::npos) << first.output;
  options.load = options.save;
  options.save.clear();
  options.exitInterval = 0;
  Outcome resumed = train(options, false);
  ASSERT_EQ(resumed.exitCode, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("loaded checkpoint iteration 2"), std::string::npos) << resumed.output;
  std::vector<Row> both = first.rows;
  both.insert(both.end(), resumed.rows.begin(), resumed.rows.end());
  Worst worst = compareRows(what, both, reference.rows);
  EXPECT_EQ(both.size(), 4u);
  EXPECT_LE(worst.loss, 1e-5);
  EXPECT_LE(worst.gradNorm, 1e-4);
}

// The device run saves after iteration 2 (--exit-interval), a CPU run resumes from that checkpoint, and its
// iterations 3 and 4 are those of a CPU run that never stopped: the parameters and AdamW moments came down whole.
TEST(CudaDeviceTraining, ACheckpointOfTheDeviceRunResumesOnTheCpu) {
  expectDeviceCheckpointResumesOnTheCpu("device, then CPU", {tinyGpt("")}, 1);
}

// A tp=2 device run's checkpoint: each rank's shards.
TEST(CudaDeviceTraining, ATensorParallelDeviceCheckpointResumesOnTheCpu) {
  expectDeviceCheckpointResumesOnTheCpu("tp 2 device, then CPU", tinyParallelGpt({2, true}), 2);
}

// An interleaved run's checkpoint: each stage's two chunks' parameters and moments.
TEST(CudaDeviceTraining, AnInterleavedPipelineDeviceCheckpointResumesOnTheCpu) {
  expectDeviceCheckpointResumesOnTheCpu("pp 2 x 2 virtual device, then CPU", tinyInterleavedGpt(), 2);
}

// Rank 1's device fails a kernel launch in its first iteration while rank 0 waits for it in a collective: the run
// stops at once (no timeout involved) with rank 1 named as the root cause, and its reason.
TEST(CudaDeviceTraining, ARankWhoseDeviceFailsStopsTheOthersNamingIt) {
  TempDir dir;
  train::TrainOptions options = optionsFor(tinyParallelGpt({2, true}), dir, "failing", 2);
  options.device = "cuda";
  test::SharedSimulatedDevice shared(kernelLibrary());
  int made = 0;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const auto start = std::chrono::steady_clock::now();
  int code = train::runTraining(options, [&](int, std::string &) -> std::unique_ptr<device::DeviceBackend> {
    auto stream = std::make_unique<test::SharedSimulatedDevice::Stream>(shared);
    if (made++ == 1)
      return std::make_unique<FailingBackend>(std::move(stream), 20);
    return stream;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  testing::internal::GetCapturedStdout();
  std::string error = testing::internal::GetCapturedStderr();
  std::printf("  stopped after %.1f s: %s", seconds, error.c_str());
  EXPECT_EQ(code, 1);
  EXPECT_NE(error.find("megatron-run: error: rank 1: iteration 1"), std::string::npos) << error;
  EXPECT_NE(error.find("an injected fault launching "), std::string::npos) << error;
  EXPECT_LT(seconds, 60.0) << "the peers stop at the failure, not at the 10-minute timeout";
}

// The distributed optimizer (ZeRO-1) over two replicas: finalize_grads leaves the data-parallel sums to the
// optimizer, which reduce-scatters the flat gradients arena over "dp" on the device, counts its chunk in the norm
// (every replica counts), clips and steps AdamW on its chunk with the flat moments, and all-gathers the parameters.
// Three iterations: a chunk bound at the wrong offset, a piece stepped twice or a parameter left out of the
// all-gather shows in the third iteration's loss and norm (the first step's learning rate is the warm-up's 0).
TEST(CudaDeviceTraining, DistributedOptimizerMatchesTheCpuTrainer) {
  const std::vector<plan::Plan> &plans = tinyParallelGpt({1, false, 2, true});
  ASSERT_TRUE(plans.front().parallel.distributedOptimizer);
  expectParallelRunMatches("dp 2 + distributed optimizer", plans, 2,
                           "data parallel: 2 (2 ranks as threads, 1 OpenMP thread each; 1 micro-batch(es) per "
                           "data-parallel rank; distributed optimizer)",
                           /*generate=*/false, /*iterations=*/3);
}

// The distributed optimizer with two tensor-parallel ranks per replica: each replica's chunk of its own shards,
// the norm's runs of the replicated parameters counted by tensor rank 0 only, added over "tp" then "dp".
TEST(CudaDeviceTraining, DistributedOptimizerWithTensorParallelMatchesTheCpuTrainer) {
  expectParallelRunMatches("tp 2 x dp 2 + distributed optimizer", tinyParallelGpt({2, true, 2, true}), 4,
                           "tensor parallel: 2, data parallel: 2 (4 ranks as threads, 1 OpenMP thread each; 1 "
                           "micro-batch(es) per data-parallel rank; distributed optimizer)",
                           /*generate=*/false, /*iterations=*/3);
}

// The distributed optimizer on two pipeline stages of two replicas each: every stage's replicas chunk their own
// stage's arenas, and the tied embedding's copy on the last stage is stepped there but counted in the norm on the
// first stage only, the stages' sums added over "pp".
TEST(CudaDeviceTraining, DistributedOptimizerWithPipelineParallelMatchesTheCpuTrainer) {
  const std::vector<plan::Plan> &plans = tinyParallelGpt({1, false, 2, true, 2});
  ASSERT_EQ(plans.size(), 2u);
  expectParallelRunMatches("pp 2 x dp 2 + distributed optimizer", plans, 4, "distributed optimizer)",
                           /*generate=*/false, /*iterations=*/3);
}

// A device run under the distributed optimizer saves after iteration 2: each replica's chunk of the moments comes
// down and is gathered whole; the CPU trainer resumes from it, and its iterations 3 and 4 (whose AdamW steps read
// those moments) are those of a CPU run that never stopped.
TEST(CudaDeviceTraining, ADistributedOptimizerDeviceCheckpointResumesOnTheCpu) {
  expectDeviceCheckpointResumesOnTheCpu("dp 2 + distributed optimizer device, then CPU",
                                        tinyParallelGpt({1, false, 2, true}), 2);
}

} // namespace
