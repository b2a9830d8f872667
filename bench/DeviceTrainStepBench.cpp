//===- DeviceTrainStepBench.cpp - One training iteration of a plan on a GPU ---===//
//
// Times what megatron-run does per iteration, on the device engine over the CUDA backend:
//
//   engine.zero(grads); engine.run("train_step") per micro-batch   forward, loss, backward, gradients
//   DeviceOptimizer::step                                          global norm (one copy to the host), clipping
//                                                                  to 1.0, AdamW (lr 1e-4, decay 0.01)
//
// then synchronizes, and reports each iteration's wall-clock time, tokens/s, the model's TFLOP/s and its MFU
// (model FLOPs utilisation: three times the plan's forward FLOPs per micro-batch, the count megatron-opt
// --mt-report gives, over the step time and the device's dense bf16 peak). bench/gpu-train-step.sh runs it beside
// PyTorch on the same model (bench/train_step_pytorch.py --device cuda).
//
// Parameters are initialised as their plan says (normal with the plan's std, ones, zeros), from a fixed seed; the
// batch is fixed: random tokens and labels below the vocabulary, an all-ones loss mask. Kernels are compiled (or
// found in the disk cache) before the clock starts, and the first iterations are untimed.
//
// With --profile, one more iteration runs with a wait after every call, and a table gives each kind of work's
// share of it (kernels by op and role, GEMMs by shape): where the time goes, without a profiler. The waits add a
// few microseconds per call, so the table's total exceeds a timed iteration.
//
// Run: device-train-step-bench --plan gpt.plan [--steps 20] [--warmup 3] [--device 0] [--peak-tflops 989]
//                              [--profile]
// Without a GPU it exits 1 saying why (as megatron-run --device cuda does). MLIR-free.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/CudaBackend.h"
#include "runtime/data/SplitMix.h"
#include "runtime/device/DeviceEngine.h"
#include "runtime/device/DeviceOptimizer.h"
#include "runtime/device/ForwardingBackend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace megatron;

namespace {

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "device-train-step-bench: %s\n", message.c_str());
  std::exit(1);
}

void check(const std::string &error, const char *what) {
  if (!error.empty())
    die(std::string(what) + ": " + error);
}

struct Options {
  std::string plan;
  int steps = 20, warmup = 3, device = 0;
  double peakTflops = 0; // 0: from the device's name
  bool profile = false;
};

/// Times each kernel launch and GEMM while `timing` is set, by waiting for it: wall-clock seconds and calls per
/// kind of work ("attention/tensor_core bf16", "gemm 8192x3072x1024 bf16").
class CallTimer final : public device::ForwardingBackend {
public:
  using ForwardingBackend::ForwardingBackend;
  bool timing = false;
  std::map<std::string, std::pair<double, int>> totals;

  std::string launch(const codegen::CudaKernel &kernel, void **args) override {
    return timed(kernel.op + (kernel.role.empty() ? "" : "/" + kernel.role) + " " + dtypeOfName(kernel.name),
                 [&] { return inner.launch(kernel, args); });
  }
  std::string gemm(const device::Gemm &call) override {
    const std::string label = "gemm " + std::to_string(call.m) + "x" + std::to_string(call.n) + "x" +
                              std::to_string(call.k) + " " + plan::toString(call.a.dtype) + "->" +
                              plan::toString(call.cType);
    return timed(label, [&] { return inner.gemm(call); });
  }

private:
  /// The storage type in a generated kernel's name (mt_<op>[_<role>]_<dtype>_<hash>).
  static std::string dtypeOfName(const std::string &name) {
    const size_t hash = name.rfind('_'), type = hash == std::string::npos ? hash : name.rfind('_', hash - 1);
    return type == std::string::npos ? "" : name.substr(type + 1, hash - type - 1);
  }
  template <typename Call> std::string timed(const std::string &label, Call call) {
    if (!timing)
      return call();
    const auto start = std::chrono::steady_clock::now();
    std::string error = call();
    if (error.empty())
      error = inner.synchronize();
    auto &[seconds, calls] = totals[label];
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++calls;
    return error;
  }
};

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        die(flag + " needs a value");
      return argv[++i];
    };
    auto number = [&](double low) {
      const std::string text = value();
      char *end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end || !(v >= low))
        die(flag + " must be a number of at least " + std::to_string(int(low)) + ", not '" + text + "'");
      return v;
    };
    if (flag == "--plan")
      o.plan = value();
    else if (flag == "--steps")
      o.steps = int(number(1));
    else if (flag == "--warmup")
      o.warmup = int(number(0));
    else if (flag == "--device")
      o.device = int(number(0));
    else if (flag == "--peak-tflops")
      o.peakTflops = number(1);
    else if (flag == "--profile")
      o.profile = true;
    else
      die("unknown flag '" + flag + "' (flags: --plan --steps --warmup --device --peak-tflops --profile)");
  }
  if (o.plan.empty())
    die("--plan FILE is required (a single-rank plan: megatron-opt --mt-autodiff --mt-plan=output=FILE)");
  return o;
}

/// NVIDIA's dense (no sparsity) bf16/fp16 tensor-core peak for the parts this is run on; 0 when unknown.
double peakTflopsOf(const std::string &device) {
  if (device.find("H100") != std::string::npos || device.find("H200") != std::string::npos ||
      device.find("H800") != std::string::npos)
    return device.find("PCIe") != std::string::npos ? 756 : 989;
  if (device.find("A100") != std::string::npos)
    return 312;
  return 0;
}

double normal(data::SplitMix64 &random) {
  // Box-Muller on two uniforms in (0, 1].
  const double u = (double(random.next() >> 11) + 1) * 0x1p-53, v = double(random.next() >> 11) * 0x1p-53;
  return std::sqrt(-2 * std::log(u)) * std::cos(2 * M_PI * v);
}

/// Every parameter as its plan initialises it, from a fixed seed (the values matter only as realistic inputs).
void initializeParameters(device::DeviceEngine &engine) {
  data::SplitMix64 random(1234, 0);
  for (const plan::Param &p : engine.plan().params) {
    const plan::Buffer &b = engine.plan().buffers[size_t(p.buffer)];
    if (b.dtype != plan::DType::F32)
      die("parameter '" + p.name + "' is not f32 (the master weights are)");
    std::vector<float> values(size_t(b.numElements()));
    for (float &v : values)
      v = p.init == plan::InitKind::Ones ? 1.0f : p.init == plan::InitKind::Zeros ? 0.0f : float(p.initStd * normal(random));
    check(engine.upload(p.buffer, values.data()), ("uploading " + p.name).c_str());
  }
}

/// Random tokens and labels below the vocabulary, all-ones loss mask; refuses plans with other inputs.
void uploadBatch(device::DeviceEngine &engine) {
  const plan::Plan &plan = engine.plan();
  int64_t vocab = 0;
  for (const plan::Param &p : plan.params)
    if (p.name.find("word_embeddings") != std::string::npos && !p.shape.empty())
      vocab = p.shape[0];
  if (vocab <= 0)
    die("the plan has no word embeddings to take the vocabulary from");
  data::SplitMix64 random(42, 1);
  for (const plan::Input &in : plan.inputs) {
    const plan::Buffer &b = plan.buffers[size_t(in.buffer)];
    if (in.name == "tokens" || in.name == "labels") {
      std::vector<int32_t> ids(size_t(b.numElements()));
      for (int32_t &id : ids)
        id = int32_t(random.next() % uint64_t(vocab));
      check(engine.upload(in.buffer, ids.data()), "uploading the batch");
    } else if (in.name == "loss_mask") {
      std::vector<float> ones(size_t(b.numElements()), 1.0f);
      check(engine.upload(in.buffer, ones.data()), "uploading the batch");
    } else {
      die("this benchmark feeds GPT plans (tokens, labels, loss_mask); the plan also needs '" + in.name + "'");
    }
  }
}

int64_t tokensPerMicroBatch(const plan::Plan &plan) {
  for (const plan::Input &in : plan.inputs)
    if (in.name == "tokens")
      return plan.buffers[size_t(in.buffer)].numElements();
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  const Options options = parse(argc, argv);
  std::string error;
  std::optional<plan::Plan> plan = plan::readPlan(options.plan, error);
  if (!plan)
    die(error);

  cuda::CudaBackendOptions backendOptions;
  backendOptions.device = options.device;
  std::unique_ptr<cuda::CudaBackend> backend = cuda::createCudaBackend(backendOptions, error);
  if (!backend)
    die(error);
  const double peak = options.peakTflops > 0 ? options.peakTflops : peakTflopsOf(backend->describe());

  const auto compileStart = std::chrono::steady_clock::now();
  const codegen::KernelSet kernels = codegen::generateKernels(*plan);
  CallTimer timer(*backend);
  std::unique_ptr<device::DeviceEngine> engine = device::DeviceEngine::create(*plan, kernels, timer, error);
  if (!engine)
    die(error);
  std::unique_ptr<device::DeviceOptimizer> optimizer = device::DeviceOptimizer::create(*engine, timer, error);
  if (!optimizer)
    die(error);
  const double compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - compileStart).count();
  int64_t arenaBytes = 0;
  for (int a = 0; a < plan::kNumArenas; ++a)
    arenaBytes += plan->allocatedBytes(plan::Arena(a));
  std::printf("device: %s (peak %.0f dense bf16 TFLOP/s)\n", backend->describe().c_str(), peak);
  std::printf("plan: %s, %s, %llu parameters, %lld micro-batch(es) of %lld tokens, %.2f GiB of arenas\n",
              options.plan.c_str(), plan->model.family.c_str(), (unsigned long long)plan->model.parameters,
              (long long)plan->model.numMicroBatches, (long long)tokensPerMicroBatch(*plan),
              double(arenaBytes) / double(1ull << 30));
  std::printf("kernels: %zu (%d compiled by NVRTC, %d from the disk cache) in %.1f s\n", kernels.kernels.size(),
              backend->kernelsCompiled(), backend->kernelsFromCache(), compileSeconds);

  initializeParameters(*engine);
  uploadBatch(*engine);
  device::AdamWSettings adam;
  adam.lr = 1e-4;
  std::vector<double> times, losses;
  auto iterate = [&](int iteration) {
    check(backend->synchronize(), "before the iteration");
    const auto start = std::chrono::steady_clock::now();
    check(engine->zero(plan::Arena::Grads), "zeroing the gradients");
    for (int64_t micro = 0; micro < plan->model.numMicroBatches; ++micro) {
      runtime::RunContext context;
      context.dropoutSeed = runtime::dropoutSeedFor(1234, iteration, micro);
      check(engine->run("train_step", context), "train_step");
    }
    double norm = 0;
    adam.step = iteration + 1;
    check(optimizer->step(adam, 1.0, norm), "the optimizer step");
    check(backend->synchronize(), "after the iteration");
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  for (int iteration = 0; iteration < options.warmup + options.steps; ++iteration) {
    const double ms = iterate(iteration);
    double loss = 0;
    check(engine->loss("train_step", loss), "reading the loss");
    losses.push_back(loss);
    if (iteration >= options.warmup)
      times.push_back(ms);
  }
  std::printf("losses:");
  for (double loss : losses)
    std::printf(" %.4f", loss);
  std::printf("\nstep ms:");
  for (double t : times)
    std::printf(" %.2f", t);
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double tokens = double(tokensPerMicroBatch(*plan) * plan->model.numMicroBatches);
  const double tflops = 3.0 * double(plan->model.forwardFlopsPerMicroBatch) * double(plan->model.numMicroBatches) /
                        (median * 1e-3) / 1e12;
  std::printf("\nours median_ms=%.3f min_ms=%.3f tokens_per_s=%.0f model_tflops=%.1f mfu=%.4f steps=%zu\n", median,
              sorted.front(), tokens / (median * 1e-3), tflops, peak > 0 ? tflops / peak : 0.0, times.size());
  if (options.profile) {
    timer.timing = true;
    const double profiled = iterate(options.warmup + options.steps);
    std::vector<std::pair<std::string, std::pair<double, int>>> rows(timer.totals.begin(), timer.totals.end());
    std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) { return a.second.first > b.second.first; });
    std::printf("profile: one iteration of %.2f ms with a wait after each call (kernels by op/role and type, GEMMs "
                "by m x n x k):\n", profiled);
    for (const auto &[label, total] : rows)
      std::printf("  %-48s %6d calls %10.3f ms %6.1f%%\n", label.c_str(), total.second, total.first * 1e3,
                  100 * total.first * 1e3 / profiled);
  }
  return 0;
}
