//===- OptimizerKernels.cpp - AdamW, the gradient norm and clipping --------------===//
//
// These run over work lists of any length (pieces of tensors or of flat arenas), so the lists are run-time
// arguments and their grids fixed: one launch serves every parameter of a storage type, where a kernel per tensor
// would cost a launch per parameter (hundreds per step) for work that is mostly tiny tensors.
//
//===----------------------------------------------------------------------===//

#include "megatron/CodeGen/CudaKernels.h"

#include "KernelEmitter.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
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
    const std::string p = cTypeOf(param), g = cTypeOf(grad), m = cTypeOf(moments);
    KernelEmitter e(plan, adamw, optimizerKernelRole({param, grad, moments}), {"Optimizer.cuh"});
    std::vector<std::string> args = {e.runtime("items", "const long long *"), e.runtime("count", "long long")};
    for (const char *scalar : {"decay_factor", "lerp_weight", "beta2", "one_minus_beta2", "neg_step_size",
                               "correction2_sqrt", "eps"})
      args.push_back(e.runtime(scalar, "double"));
    e.body(deviceCall("adamw", {p, g, m}, args));
    e.launch = gridStride(kOptimizerBlocks * kThreads);
    kernels.push_back(finishOrDie(e));
  }
  for (plan::DType type : gradTypes) {
    const std::string t = cTypeOf(type);
    KernelEmitter sum(plan, partial, optimizerKernelRole({type}), {"Optimizer.cuh"});
    std::string items = sum.runtime("items", "const long long *"), n = sum.runtime("count", "long long"),
                out = sum.runtime("partial", "double *");
    sum.body(deviceCall("sumOfSquaresPartial", {t, num(kThreads)}, {items, n, out}));
    sum.launch = perRow(kSumSquaresGrid, kThreads);
    kernels.push_back(finishOrDie(sum));

    KernelEmitter clip(plan, scale, optimizerKernelRole({type}), {"Optimizer.cuh"});
    std::string list = clip.runtime("items", "const long long *"), count = clip.runtime("count", "long long"),
                factor = clip.runtime("factor", "float");
    clip.body(deviceCall("scale", {t}, {list, count, factor}));
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

namespace {

/// `elements` split into items of at most kOptimizerItemElements: calls add(first, count) for each, in order.
template <typename Add> void splitIntoItems(int64_t elements, Add add) {
  for (int64_t first = 0; first < elements; first += kOptimizerItemElements)
    add(first, std::min(kOptimizerItemElements, elements - first));
}

long long wordAt(const void *base, plan::DType type, int64_t element) {
  return static_cast<long long>(reinterpret_cast<std::uintptr_t>(base) +
                                static_cast<std::uintptr_t>(element * plan::bytesOf(type)));
}

} // namespace

void appendAdamwItems(std::vector<long long> &items, const AdamwTensor &t) {
  splitIntoItems(t.elements, [&](int64_t first, int64_t count) {
    items.insert(items.end(), {wordAt(t.param, t.paramType, first), wordAt(t.grad, t.gradType, first),
                               wordAt(t.expAvg, t.momentType, first), wordAt(t.expAvgSq, t.momentType, first),
                               static_cast<long long>(count), t.decay ? 1LL : 0LL});
  });
}

void appendSpanItems(std::vector<long long> &items, const void *data, plan::DType type, int64_t elements) {
  splitIntoItems(elements, [&](int64_t first, int64_t count) {
    items.insert(items.end(), {wordAt(data, type, first), static_cast<long long>(count)});
  });
}

int optimizerItemWords(const std::string &op) { return op == "adamw" ? 6 : 2; }

std::string optimizerKernelRole(const std::vector<plan::DType> &types) {
  std::string role;
  for (plan::DType type : types)
    role += (role.empty() ? "" : "_") + std::string(plan::toString(type));
  return role;
}

} // namespace megatron::codegen
