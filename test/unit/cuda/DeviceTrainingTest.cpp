//===- DeviceTrainingTest.cpp - megatron-run's loop on the device engine against the CPU ---===//
//
// The trainer (runtime/train, runTraining) with --device cuda over the host simulator's backend, against the same
// run on the CPU engine: the per-iteration losses and gradient norms of its --loss-log, the validation loss, fp16's
// skipped steps, the samples generated after training, and a checkpoint the device run saves that a CPU run
// resumes from. The whole loop is the CPU trainer's; only the compute differs, so what these runs compare is that
// the device runs the same programs on the same inputs and steps the same optimizer (the numerics of each program
// are DeviceEngineTest's). The model is tiny and the runs short: the simulator runs each thread as a fiber.
//
//===----------------------------------------------------------------------===//

#include "TestModels.h"
#include "UniqueTempDir.h"

#include "sim/SimulatedBackend.h"

#include "runtime/train/Trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
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

/// Training options for `plan` written into `dir`: quiet, evaluating one global batch at the end.
train::TrainOptions optionsFor(const plan::Plan &plan, const TempDir &dir, const std::string &name,
                               int64_t iterations) {
  const std::string path = dir.path + "/" + name + ".plan";
  std::ofstream(path) << plan::toJson(plan);
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

/// Trains as `options` say, on the CPU or on the simulator's backend.
Outcome train(train::TrainOptions options, bool onDevice) {
  options.device = onDevice ? "cuda" : "cpu";
  Outcome outcome;
  testing::internal::CaptureStdout();
  outcome.exitCode = train::runTraining(options, [&](int, std::string &) -> std::unique_ptr<device::DeviceBackend> {
    return std::make_unique<CountingBackend>(outcome.traffic);
  });
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
  EXPECT_LE(worst.loss, 1e-5);
  EXPECT_LE(worst.gradNorm, 1e-4);
  EXPECT_LE(worst.validation, 1e-5);
  EXPECT_FALSE(std::isnan(device.rows.back().validation)) << "the last iteration evaluates";
  ASSERT_NE(samples(cpu.output), "") << cpu.output;
  EXPECT_EQ(samples(device.output), samples(cpu.output)) << "greedy decoding picks the same tokens";

  // Up: the initial parameters and moments once, then only inputs: 3 per micro-batch (6 trained, 2 evaluated) and
  // the tokens once per generated token. Down: at most a program's status words and its loss (or the logits row
  // sampled) per run, and the gradient norm per optimizer step.
  const int state = 3 * int(tinyGpt("").params.size()), microBatches = 3 * 2 + 2, tokens = 5;
  std::printf("  copies to the device %d, to the host %d\n", device.traffic.toDevice, device.traffic.toHost);
  EXPECT_EQ(device.traffic.toDevice, state + 3 * microBatches + tokens);
  EXPECT_LE(device.traffic.toHost, 2 * (microBatches + tokens) + 3);
}

// fp16 with dynamic loss scaling from 2^20 and a hysteresis of 1: the first steps overflow in f16 and are skipped,
// halving the scale each time, on both; the skipped iterations, the scales and the losses agree.
TEST(CudaDeviceTraining, Fp16DynamicLossScalingSkipsTheSameSteps) {
  TempDir dir;
  train::TrainOptions options = optionsFor(tinyGpt("fp16"), dir, "fp16", 3);
  options.lossScale.anyGiven = true;
  options.lossScale.initial = 0x1p20;
  options.lossScale.hysteresis = 1;
  Outcome cpu = train(options, false), device = train(options, true);
  ASSERT_EQ(cpu.exitCode, 0) << cpu.output;
  ASSERT_EQ(device.exitCode, 0) << device.output;
  int skipped = 0;
  for (const Row &row : cpu.rows)
    skipped += std::isnan(row.gradNorm);
  EXPECT_GE(skipped, 1) << "the test wants a skipped step";
  EXPECT_LT(skipped, int(cpu.rows.size())) << "and a step taken";
  Worst worst = compareRows("fp16", device.rows, cpu.rows);
  EXPECT_LE(worst.loss, 1e-4);
  EXPECT_LE(worst.gradNorm, 1e-3);
  EXPECT_LE(worst.validation, 1e-4);
  auto scaleLine = [](const std::string &output) {
    size_t at = output.find("| loss scale: ");
    return at == std::string::npos ? std::string() : output.substr(at, output.find('\n', at) - at);
  };
  EXPECT_NE(scaleLine(cpu.output), "");
  EXPECT_EQ(scaleLine(device.output), scaleLine(cpu.output)) << "the same scale and skipped iterations";
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

// The device run saves after iteration 2 (--exit-interval), a CPU run resumes from that checkpoint, and its
// iterations 3 and 4 are those of a CPU run that never stopped: the parameters and AdamW moments came down whole.
TEST(CudaDeviceTraining, ACheckpointOfTheDeviceRunResumesOnTheCpu) {
  TempDir dir;
  train::TrainOptions options = optionsFor(tinyGpt(""), dir, "resume", 4);
  Outcome reference = train(options, false);
  ASSERT_EQ(reference.exitCode, 0) << reference.output;

  options.save = dir.path + "/checkpoints";
  options.exitInterval = 2;
  Outcome first = train(options, true);
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
  Worst worst = compareRows("device, then CPU", both, reference.rows);
  EXPECT_LE(worst.loss, 1e-5);
  EXPECT_LE(worst.gradNorm, 1e-4);
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
