//===- OptimizerKernels.cpp - AdamW, the gradient norm and clipping --------------===//
//
// These run on whole tensors or flat arenas of any size, so their sizes are run-time arguments and their grids
// fixed; one kernel serves every parameter of a storage type.
//
//===----------------------------------------------------------------------===//

#include "megatron/CodeGen/CudaKernels.h"

#include "KernelEmitter.h"

#include <cassert>
#include <set>
#include <tuple>

namespace megatron::codegen {

using namespace detail;

namespace {

// The largest grid of the grid-stride optimizer kernels: enough blocks to fill a GPU, the loop does the rest.
constexpr int64_t kOptimizerBlocks = 1024;

CudaKernel finishOrDie(const KernelEmitter &e) {
  std::string error;
  CudaKernel kernel = e.finish(error);
  assert(error.empty() && "optimizer kernels read no attributes");
  return kernel;
}

// A step of no program that names the optimizer operation, for KernelEmitter.
plan::Step operation(const char *name) {
  plan::Step step;
  step.op = name;
  return step;
}

} // namespace

std::vector<CudaKernel> optimizerKernels(const plan::Plan &plan) {
  std::set<std::tuple<plan::DType, plan::DType, plan::DType>> adamTypes; // parameter, gradient, moments
  std::set<plan::DType> gradTypes;
  for (const plan::Param &p : plan.params) {
    const plan::DType grad = plan.buffers[p.grad].dtype;
    // The distributed optimizer's moments are the flat f32 buffers of Plan::optimizerShard.
    const plan::DType moments = p.expAvg >= 0 ? plan.buffers[p.expAvg].dtype : plan::DType::F32;
    adamTypes.insert({plan.buffers[p.buffer].dtype, grad, moments});
    gradTypes.insert(grad);
  }

  std::vector<CudaKernel> kernels;
  const plan::Step adamw = operation("adamw"), partial = operation("sum_squares_partial"),
                   finish = operation("sum_squares_finish"), scale = operation("scale");
  for (const auto &[param, grad, moments] : adamTypes) {
    KernelEmitter e(plan, adamw, "", {"Optimizer.cuh"});
    const std::string p = cTypeOf(param), g = cTypeOf(grad), m = cTypeOf(moments);
    std::vector<std::string> args = {e.runtime("param", p + " *"), e.runtime("grad", "const " + g + " *"),
                                     e.runtime("exp_avg", m + " *"), e.runtime("exp_avg_sq", m + " *"),
                                     e.runtime("n", "long long")};
    for (const char *scalar : {"decay_factor", "lerp_weight", "beta2", "one_minus_beta2", "neg_step_size",
                               "correction2_sqrt", "eps"})
      args.push_back(e.runtime(scalar, "double"));
    args.push_back(e.runtime("decay", "int"));
    e.body(deviceCall("adamw", {p, g, m}, args));
    e.launch = gridStride(kOptimizerBlocks * kThreads);
    kernels.push_back(finishOrDie(e));
  }
  for (plan::DType type : gradTypes) {
    const std::string t = cTypeOf(type);
    KernelEmitter sum(plan, partial, "", {"Optimizer.cuh"});
    std::string x = sum.runtime("x", "const " + t + " *"), n = sum.runtime("n", "long long"),
                out = sum.runtime("partial", "double *");
    sum.body(deviceCall("sumOfSquaresPartial", {t, num(kThreads)}, {x, n, out}));
    sum.launch = perRow(kSumSquaresGrid, kThreads);
    kernels.push_back(finishOrDie(sum));

    KernelEmitter clip(plan, scale, "", {"Elementwise.cuh"});
    std::string y = clip.runtime("x", t + " *"), count = clip.runtime("n", "long long"),
                factor = clip.runtime("factor", "float");
    clip.body(deviceCall("scale", {t}, {y, count, factor}));
    clip.launch = gridStride(kOptimizerBlocks * kThreads);
    kernels.push_back(finishOrDie(clip));
  }
  KernelEmitter total(plan, finish, "", {"Optimizer.cuh"});
  std::string in = total.runtime("partial", "const double *"), out = total.runtime("total", "double *");
  total.body(deviceCall("sumOfSquaresFinish", {num(kSumSquaresGrid)}, {in, out}));
  total.launch = perRow(1, 1);
  kernels.push_back(finishOrDie(total));
  return kernels;
}

} // namespace megatron::codegen
