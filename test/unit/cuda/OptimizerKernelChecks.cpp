//===- OptimizerKernelChecks.cpp - The optimizer kernels on a backend against runtime/cpu ---===//

#include "OptimizerKernelChecks.h"

#include "DeviceMemory.h"
#include "TestPlans.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <tuple>
#include <utility>

namespace megatron::test {

namespace {

constexpr int64_t kElements = 300001; // more than the 262144 threads of the fixed grids, odd, and 5 work items

/// The test GPT's optimizer kernel for `op` (all its parameters, gradients and moments are f32).
std::string kernelFor(const std::string &op, codegen::CudaKernel &kernel) {
  std::string error;
  const plan::Plan *gpt = testPlan("gpt", error);
  if (!gpt)
    return error;
  for (const codegen::CudaKernel &candidate : codegen::optimizerKernels(*gpt))
    if (candidate.op == op) {
      kernel = candidate;
      return {};
    }
  return "the test GPT has no " + op + " optimizer kernel";
}

template <typename T> std::uint64_t slot(T value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof value);
  return bits;
}

/// Prepares `kernel` on the backend and launches it with its arguments taken by name from `values` (each an
/// 8-byte slot holding the parameter's value in its own C type).
std::string launchNamed(device::DeviceBackend &backend, const codegen::CudaKernel &kernel,
                        std::map<std::string, std::uint64_t> values) {
  if (std::string error = backend.prepare({kernel}); !error.empty())
    return error;
  std::vector<void *> args;
  for (const codegen::KernelArg &arg : kernel.args) {
    auto it = values.find(arg.name);
    if (it == values.end())
      return kernel.name + ": no value for " + arg.name;
    args.push_back(&it->second);
  }
  return backend.launch(kernel, args.data());
}

/// The work list `words` (codegen::appendAdamwItems, appendSpanItems) in fresh device memory, and its arguments.
std::string listOnDevice(device::DeviceBackend &backend, const std::vector<long long> &words, const std::string &op,
                         DeviceMemory &device, std::map<std::string, std::uint64_t> &values);

/// `host` copied into fresh device memory.
template <typename T>
std::string toDevice(device::DeviceBackend &backend, const std::vector<T> &host, DeviceMemory &device) {
  std::string error;
  device = DeviceMemory(backend, host.size() * sizeof(T), error);
  return device ? backend.copyToDevice(device.data(), host.data(), device.bytes()) : error;
}

template <typename T>
std::string toHost(device::DeviceBackend &backend, const DeviceMemory &device, std::vector<T> &host) {
  host.resize(device.bytes() / sizeof(T));
  return backend.copyToHost(host.data(), device.data(), device.bytes());
}

std::string listOnDevice(device::DeviceBackend &backend, const std::vector<long long> &words, const std::string &op,
                         DeviceMemory &device, std::map<std::string, std::uint64_t> &values) {
  if (std::string error = toDevice(backend, words, device); !error.empty())
    return error;
  values["items"] = slot(static_cast<const void *>(device.data()));
  values["count"] = slot<long long>(static_cast<long long>(words.size()) / codegen::optimizerItemWords(op));
  return {};
}

std::vector<float> randomVector(std::mt19937 &rng, float mean, float spread, bool positive = false) {
  std::normal_distribution<float> normal(mean, spread);
  std::vector<float> v(kElements);
  for (float &x : v)
    x = positive ? std::fabs(normal(rng)) : normal(rng);
  return v;
}

/// The worst |device − cpu| relative to the CPU tensor's scale, or the first element beyond `tolerance` of it.
std::string compare(const char *what, const std::vector<float> &device, const std::vector<float> &cpu,
                    double tolerance, double &worst) {
  double scale = 0;
  for (float c : cpu)
    scale = std::max(scale, double(std::fabs(c)));
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (device[i] == cpu[i])
      continue;
    const double relative = std::fabs(double(device[i]) - double(cpu[i])) / std::max(scale, 1e-30);
    if (!(relative <= tolerance)) {
      char text[256];
      std::snprintf(text, sizeof text, "%s element %zu: device %.9g, CPU %.9g (%.3g of the tensor's scale %.3g; "
                    "tolerance %.3g)", what, i, double(device[i]), double(cpu[i]), relative, scale, tolerance);
      return text;
    }
    worst = std::max(worst, relative);
  }
  return {};
}

} // namespace

std::string checkAdamw(device::DeviceBackend &backend, double relativeTolerance) {
  codegen::CudaKernel adamw;
  if (std::string error = kernelFor("adamw", adamw); !error.empty())
    return error;
  std::mt19937 rng(3);
  double worst = 0;
  for (int decay : {0, 1}) {
    const cpu::AdamWConfig c{3e-3, 0.9, 0.95, 1e-8, 0.1, 7};
    std::vector<float> param = randomVector(rng, 0, 0.02f), grad = randomVector(rng, 0, 1e-3f),
                       m = randomVector(rng, 0, 1e-3f), v = randomVector(rng, 0, 1e-6f, true);
    DeviceMemory dParam, dGrad, dM, dV;
    using Upload = std::pair<const std::vector<float> *, DeviceMemory *>;
    for (const Upload &u : {Upload{&param, &dParam}, Upload{&grad, &dGrad}, Upload{&m, &dM}, Upload{&v, &dV}})
      if (std::string error = toDevice(backend, *u.first, *u.second); !error.empty())
        return error;
    cpu::adamwStep<float>(kElements, c, decay, param.data(), grad.data(), m.data(), v.data());
    // The step's scalars in double, as the CPU backend computes them (docs/cuda.md).
    const double t = double(c.step);
    std::map<std::string, std::uint64_t> values = {
        {"decay_factor", slot(1.0 - c.lr * c.weightDecay)},
        {"lerp_weight", slot(1.0 - c.beta1)},
        {"beta2", slot(c.beta2)},
        {"one_minus_beta2", slot(1.0 - c.beta2)},
        {"neg_step_size", slot(-(c.lr / (1.0 - std::pow(c.beta1, t))))},
        {"correction2_sqrt", slot(std::sqrt(1.0 - std::pow(c.beta2, t)))},
        {"eps", slot(c.eps)}};
    // The tensor as a work list of several items (one launch, as the optimizer steps every parameter).
    std::vector<long long> items;
    codegen::appendAdamwItems(items, {dParam.data(), dGrad.data(), dM.data(), dV.data(), kElements, decay != 0});
    DeviceMemory dItems;
    if (std::string error = listOnDevice(backend, items, "adamw", dItems, values); !error.empty())
      return error;
    if (std::string error = launchNamed(backend, adamw, values); !error.empty())
      return error;
    const std::string where = decay ? " (with weight decay)" : " (no weight decay)";
    using Result = std::tuple<const char *, const std::vector<float> *, const DeviceMemory *>;
    for (const auto &[name, cpuValues, device] :
         {Result{"param", &param, &dParam}, Result{"exp_avg", &m, &dM}, Result{"exp_avg_sq", &v, &dV}}) {
      std::vector<float> result;
      if (std::string error = toHost(backend, *device, result); !error.empty())
        return error;
      if (std::string error = compare(name, result, *cpuValues, relativeTolerance, worst); !error.empty())
        return "adamw" + where + ": " + error;
    }
  }
  std::printf("adamw on %s: worst difference %.3g of the tensor's scale over %lld elements, twice\n",
              backend.describe().c_str(), worst, static_cast<long long>(kElements));
  return {};
}

std::string checkSumOfSquares(device::DeviceBackend &backend, double relativeTolerance) {
  codegen::CudaKernel partialKernel, finishKernel;
  if (std::string error = kernelFor("sum_squares_partial", partialKernel); !error.empty())
    return error;
  if (std::string error = kernelFor("sum_squares_finish", finishKernel); !error.empty())
    return error;
  std::mt19937 rng(5);
  const std::vector<float> x = randomVector(rng, 0.1f, 1.0f);
  DeviceMemory dX, dPartial, dTotal;
  if (std::string error = toDevice(backend, x, dX); !error.empty())
    return error;
  // The partials start as NaN; finish adds to the running total of the tensors before.
  if (std::string error = toDevice(backend, std::vector<double>(codegen::kSumSquaresGrid, std::nan("")), dPartial);
      !error.empty())
    return error;
  if (std::string error = toDevice(backend, std::vector<double>{0.5}, dTotal); !error.empty())
    return error;
  // Two runs of the tensor in one list: the items of a run split at kOptimizerItemElements, the second run's
  // first item shorter.
  const int64_t split = 100003;
  std::vector<long long> items;
  codegen::appendSpanItems(items, dX.data(), plan::DType::F32, split);
  codegen::appendSpanItems(items, dX.data() + split * sizeof(float), plan::DType::F32, kElements - split);
  std::map<std::string, std::uint64_t> values = {{"partial", slot(dPartial.data())}};
  DeviceMemory dItems;
  if (std::string error = listOnDevice(backend, items, "sum_squares_partial", dItems, values); !error.empty())
    return error;
  if (std::string error = launchNamed(backend, partialKernel, values); !error.empty())
    return error;
  if (std::string error =
          launchNamed(backend, finishKernel, {{"partial", slot(dPartial.data())}, {"total", slot(dTotal.data())}});
      !error.empty())
    return error;
  std::vector<double> total;
  if (std::string error = toHost(backend, dTotal, total); !error.empty())
    return error;
  const double cpu = cpu::sumOfSquares<float>(kElements, x.data());
  const double relative = std::fabs(total[0] - 0.5 - cpu) / cpu;
  std::printf("sum of squares on %s: device %.17g, CPU %.17g (relative difference %.3g)\n",
              backend.describe().c_str(), total[0] - 0.5, cpu, relative);
  if (!(relative <= relativeTolerance))
    return "sum of squares: device " + std::to_string(total[0] - 0.5) + ", CPU " + std::to_string(cpu) +
           ", beyond the relative tolerance " + std::to_string(relativeTolerance);
  return {};
}

std::string checkScale(device::DeviceBackend &backend, double relativeTolerance) {
  codegen::CudaKernel scale;
  if (std::string error = kernelFor("scale", scale); !error.empty())
    return error;
  std::mt19937 rng(9);
  std::vector<float> x = randomVector(rng, 0, 1), expected = x;
  const float factor = 0.37f;
  cpu::scale<float>(kElements, factor, expected.data());
  DeviceMemory dX;
  if (std::string error = toDevice(backend, x, dX); !error.empty())
    return error;
  std::vector<long long> items;
  codegen::appendSpanItems(items, dX.data(), plan::DType::F32, kElements);
  std::map<std::string, std::uint64_t> values = {{"factor", slot(factor)}};
  DeviceMemory dItems;
  if (std::string error = listOnDevice(backend, items, "scale", dItems, values); !error.empty())
    return error;
  if (std::string error = launchNamed(backend, scale, values); !error.empty())
    return error;
  if (std::string error = toHost(backend, dX, x); !error.empty())
    return error;
  double worst = 0;
  if (std::string error = compare("scale: x", x, expected, relativeTolerance, worst); !error.empty())
    return error;
  std::printf("scale on %s: worst difference %.3g of the tensor's scale\n", backend.describe().c_str(), worst);
  return {};
}

} // namespace megatron::test
