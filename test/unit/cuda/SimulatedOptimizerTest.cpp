//===- SimulatedOptimizerTest.cpp - The optimizer kernels in the simulator against runtime/cpu ---===//
//
// optimizerKernels(plan) on random data, sized past one grid-stride pass of their fixed grids (1024·256 threads),
// against cpu::adamwStep, cpu::sumOfSquares and cpu::scale. The host computes AdamW's step scalars in double as
// docs/cuda.md says the launcher will.
//
//===----------------------------------------------------------------------===//

#include "SimulatedKernels.h"
#include "TestModels.h"

#include "runtime/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace megatron;

namespace {

constexpr int64_t kElements = 300001; // more than the 262144 threads of the fixed grids, and odd

/// The test GPT's optimizer kernel for `op` (all its parameters, gradients and moments are f32).
codegen::CudaKernel kernelFor(const std::string &op) {
  for (const codegen::CudaKernel &kernel : codegen::optimizerKernels(test::gptPlan()))
    if (kernel.op == op)
      return kernel;
  ADD_FAILURE() << "no " << op << " kernel";
  return {};
}

/// Launches `kernel` with its run-time arguments taken by name from `values` (each an 8-byte slot).
std::string launchNamed(const codegen::CudaKernel &kernel, std::map<std::string, uint64_t> values) {
  std::vector<void *> args;
  for (const codegen::KernelArg &arg : kernel.args) {
    auto it = values.find(arg.name);
    if (it == values.end())
      return "no value for " + arg.name;
    args.push_back(&it->second);
  }
  return test::simulatedKernels().library.launch(kernel, args.data());
}

template <typename T> uint64_t slot(T value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof value);
  return bits;
}

std::vector<float> randomVector(std::mt19937 &rng, float mean, float spread, bool positive = false) {
  std::normal_distribution<float> normal(mean, spread);
  std::vector<float> v(kElements);
  for (float &x : v)
    x = positive ? std::fabs(normal(rng)) : normal(rng);
  return v;
}

TEST(CudaSimulatedOptimizer, AdamwEqualsTheCpuStep) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  const codegen::CudaKernel adamw = kernelFor("adamw");
  std::mt19937 rng(3);
  for (int decay : {0, 1}) {
    const cpu::AdamWConfig c{3e-3, 0.9, 0.95, 1e-8, 0.1, 7};
    std::vector<float> param = randomVector(rng, 0, 0.02f), grad = randomVector(rng, 0, 1e-3f),
                       m = randomVector(rng, 0, 1e-3f), v = randomVector(rng, 0, 1e-6f, true);
    std::vector<float> p2 = param, m2 = m, v2 = v;
    cpu::adamwStep<float>(kElements, c, decay, param.data(), grad.data(), m.data(), v.data());
    // The step's scalars in double, as the CPU backend computes them (docs/cuda.md).
    const double t = double(c.step);
    ASSERT_EQ(launchNamed(adamw, {{"param", slot(p2.data())},
                                  {"grad", slot(static_cast<const float *>(grad.data()))},
                                  {"exp_avg", slot(m2.data())},
                                  {"exp_avg_sq", slot(v2.data())},
                                  {"n", slot<long long>(kElements)},
                                  {"decay_factor", slot(1.0 - c.lr * c.weightDecay)},
                                  {"lerp_weight", slot(1.0 - c.beta1)},
                                  {"beta2", slot(c.beta2)},
                                  {"one_minus_beta2", slot(1.0 - c.beta2)},
                                  {"neg_step_size", slot(-(c.lr / (1.0 - std::pow(c.beta1, t))))},
                                  {"correction2_sqrt", slot(std::sqrt(1.0 - std::pow(c.beta2, t)))},
                                  {"eps", slot(c.eps)},
                                  {"decay", slot<int>(decay)}}),
              "");
    // Operation by operation the CPU's, with the same roundings and no contraction: equal bit for bit.
    for (int64_t i = 0; i < kElements; ++i) {
      ASSERT_EQ(p2[i], param[i]) << "param " << i << " decay " << decay;
      ASSERT_EQ(m2[i], m[i]) << "exp_avg " << i;
      ASSERT_EQ(v2[i], v[i]) << "exp_avg_sq " << i;
    }
  }
}

TEST(CudaSimulatedOptimizer, SumOfSquaresEqualsTheCpuSum) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  std::mt19937 rng(5);
  const std::vector<float> x = randomVector(rng, 0.1f, 1.0f);
  std::vector<double> partial(codegen::kSumSquaresGrid, std::nan(""));
  double total = 0.5; // finish adds to the running total of the tensors before
  ASSERT_EQ(launchNamed(kernelFor("sum_squares_partial"),
                        {{"x", slot(x.data())}, {"n", slot<long long>(kElements)}, {"partial", slot(partial.data())}}),
            "");
  ASSERT_EQ(launchNamed(kernelFor("sum_squares_finish"),
                        {{"partial", slot(static_cast<const double *>(partial.data()))}, {"total", slot(&total)}}),
            "");
  const double cpu = cpu::sumOfSquares<float>(kElements, x.data());
  // Both sum exact squares in double, in different orders.
  EXPECT_NEAR(total - 0.5, cpu, 1e-12 * cpu);
}

TEST(CudaSimulatedOptimizer, ScaleEqualsTheCpuScale) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  std::mt19937 rng(9);
  std::vector<float> x = randomVector(rng, 0, 1), expected = x;
  const float factor = 0.37f;
  cpu::scale<float>(kElements, factor, expected.data());
  ASSERT_EQ(launchNamed(kernelFor("scale"),
                        {{"x", slot(x.data())}, {"n", slot<long long>(kElements)}, {"factor", slot(factor)}}),
            "");
  for (int64_t i = 0; i < kElements; ++i)
    ASSERT_EQ(x[i], expected[i]) << i;
}

} // namespace
