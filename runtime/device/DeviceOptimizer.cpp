//===- DeviceOptimizer.cpp - Megatron's optimizer step on the device -------===//

#include "runtime/device/DeviceOptimizer.h"

#include <cmath>
#include <cstring>
#include <map>

namespace megatron::device {

namespace {

/// A kernel's arguments by parameter name, each in an 8-byte slot (cudaLaunchKernel's args[i] point at them).
class NamedArguments {
public:
  template <typename T> NamedArguments &set(const std::string &name, T value) {
    static_assert(sizeof(T) <= sizeof(std::uint64_t), "one slot per argument");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof value);
    slots[name] = bits;
    return *this;
  }
  /// The argument array of `kernel`, or an error naming a parameter without a value.
  std::string pointers(const codegen::CudaKernel &kernel, std::vector<void *> &args) {
    args.clear();
    for (const codegen::KernelArg &arg : kernel.args) {
      auto it = slots.find(arg.name);
      if (it == slots.end())
        return kernel.name + ": no value for its parameter '" + arg.name + "'";
      args.push_back(&it->second);
    }
    return {};
  }

private:
  std::map<std::string, std::uint64_t> slots;
};

std::string launchWith(DeviceBackend &backend, const codegen::CudaKernel &kernel, NamedArguments &values) {
  std::vector<void *> args;
  if (std::string error = values.pointers(kernel, args); !error.empty())
    return error;
  return backend.launch(kernel, args.data());
}

/// The C type of a pointer parameter: "const float *" → "float".
std::string pointee(std::string cType) {
  if (cType.rfind("const ", 0) == 0)
    cType = cType.substr(6);
  while (!cType.empty() && (cType.back() == '*' || cType.back() == ' '))
    cType.pop_back();
  return cType;
}

/// torch.optim.AdamW's scalars of `adam`, in double on the host exactly as cpu::adamwStep computes them.
NamedArguments adamScalars(const AdamWSettings &adam) {
  const double t = double(adam.step);
  NamedArguments scalars;
  scalars.set("decay_factor", 1.0 - adam.lr * adam.weightDecay)
      .set("lerp_weight", 1.0 - adam.beta1)
      .set("beta2", adam.beta2)
      .set("one_minus_beta2", 1.0 - adam.beta2)
      .set("neg_step_size", -(adam.lr / (1.0 - std::pow(adam.beta1, t))))
      .set("correction2_sqrt", std::sqrt(1.0 - std::pow(adam.beta2, t)))
      .set("eps", adam.eps);
  return scalars;
}

} // namespace

std::unique_ptr<DeviceOptimizer> DeviceOptimizer::create(DeviceEngine &engine, DeviceBackend &backend,
                                                         std::string &error, std::optional<NormShare> share,
                                                         comm::Communicator *replicas) {
  const plan::Plan &plan = engine.plan();
  if (share) {
    if (share->runs.size() != plan.params.size()) {
      error = "the norm's share names " + std::to_string(share->runs.size()) + " parameters; the plan has " +
              std::to_string(plan.params.size());
      return nullptr;
    }
    for (size_t i = 0; i < plan.params.size(); ++i)
      for (const auto &[first, count] : share->runs[i])
        if (first < 0 || count < 0 || first + count > plan.buffers[size_t(plan.params[i].grad)].numElements()) {
          error = "the norm's share of " + plan.params[i].name + " has a run [" + std::to_string(first) + ", " +
                  std::to_string(first + count) + ") outside its gradient";
          return nullptr;
        }
  }
  if (share) // runs that continue one another are one launch (a sharded matrix's rows are owned run by run)
    for (auto &runs : share->runs) {
      Runs merged;
      for (const auto &run : runs)
        if (!merged.empty() && merged.back().first + merged.back().second == run.first)
          merged.back().second += run.second;
        else
          merged.push_back(run);
      runs = std::move(merged);
    }
  std::unique_ptr<DeviceOptimizer> optimizer(new DeviceOptimizer(engine, backend));
  if (plan.parallel.distributedOptimizer) {
    const int dpRank = replicas ? replicas->rank() : 0, dpSize = replicas ? replicas->size() : 1;
    optimizer->chunk = replicaChunk(plan, dpRank, dpSize, share ? &share->runs : nullptr, error);
    if (!optimizer->chunk)
      return nullptr;
    optimizer->replicas = dpSize > 1 ? replicas : nullptr;
    optimizer->flatParams = static_cast<float *>(engine.arenaAddress(plan::Arena::Params));
    optimizer->flatGrads = static_cast<float *>(engine.arenaAddress(plan::Arena::Grads));
    optimizer->shardExpAvg = static_cast<float *>(engine.address(plan.optimizerShard->expAvg));
    optimizer->shardExpAvgSq = static_cast<float *>(engine.address(plan.optimizerShard->expAvgSq));
  }
  optimizer->share = std::move(share);
  optimizer->kernels = codegen::optimizerKernels(engine.plan());
  if (error = backend.prepare(optimizer->kernels); !error.empty())
    return nullptr;
  void *memory = backend.allocate(sizeof(double) * (codegen::kSumSquaresGrid + 1), error);
  if (!memory)
    return nullptr;
  optimizer->partial = static_cast<double *>(memory);
  optimizer->total = optimizer->partial + codegen::kSumSquaresGrid;
  return optimizer;
}

DeviceOptimizer::~DeviceOptimizer() {
  if (partial)
    backend.release(partial);
}

const codegen::CudaKernel *DeviceOptimizer::find(const std::string &op, const std::string &arg,
                                                 const std::string &cType) const {
  for (const codegen::CudaKernel &kernel : kernels)
    if (kernel.op == op)
      for (const codegen::KernelArg &a : kernel.args)
        if (a.name == arg && pointee(a.cType) == cType)
          return &kernel;
  return nullptr;
}

std::string DeviceOptimizer::scale(void *x, plan::DType type, std::int64_t n, double factor) {
  const codegen::CudaKernel *kernel = find("scale", "x", codegen::cTypeOf(type));
  if (!kernel)
    return "no scaling kernel for " + std::string(codegen::cTypeOf(type)) + " gradients";
  NamedArguments values;
  values.set("x", x).set("n", static_cast<long long>(n)).set("factor", static_cast<float>(factor));
  return launchWith(backend, *kernel, values);
}

std::string DeviceOptimizer::scaleGradients(double factor) {
  for (const plan::Param &p : engine.plan().params) {
    const plan::Buffer &grad = engine.plan().buffers[size_t(p.grad)];
    if (std::string error = scale(engine.address(p.grad), grad.dtype, grad.numElements(), factor); !error.empty())
      return "the gradient of " + p.name + ": " + error;
  }
  return {};
}

std::string DeviceOptimizer::addSquares(const void *x, plan::DType dtype, std::int64_t n) {
  const std::string type = codegen::cTypeOf(dtype);
  const codegen::CudaKernel *partialSums = find("sum_squares_partial", "x", type);
  const codegen::CudaKernel *finish = find("sum_squares_finish", "partial", "double");
  if (!partialSums || !finish)
    return "no gradient-norm kernel for " + type + " gradients";
  if (n == 0)
    return {};
  NamedArguments values;
  values.set("x", x).set("n", static_cast<long long>(n)).set("partial", partial).set("total", total);
  if (std::string error = launchWith(backend, *partialSums, values); !error.empty())
    return error;
  return launchWith(backend, *finish, values);
}

std::string DeviceOptimizer::addSharedSquares() {
  if (chunk) { // the chunk's runs, as the CPU trainer sums them after the reduce-scatter
    for (const auto &[first, count] : chunk->normRuns)
      if (std::string error = addSquares(flatGrads + first, plan::DType::F32, count); !error.empty())
        return error;
    return {};
  }
  const plan::Plan &plan = engine.plan();
  for (size_t i = 0; i < plan.params.size(); ++i) {
    const plan::Param &p = plan.params[i];
    const plan::Buffer &grad = plan.buffers[size_t(p.grad)];
    const std::byte *data = static_cast<const std::byte *>(engine.address(p.grad));
    const Runs every = {{0, grad.numElements()}};
    for (const auto &[first, count] : share ? share->runs[i] : every)
      if (std::string error = addSquares(data + first * std::int64_t(deviceBytes(grad.dtype)), grad.dtype, count);
          !error.empty())
        return error;
  }
  return {};
}

std::string DeviceOptimizer::adamw(const AdamWSettings &adam, plan::DType type, void *param, const void *grad,
                                   void *expAvg, void *expAvgSq, std::int64_t n, bool decay) {
  const codegen::CudaKernel *kernel = find("adamw", "param", codegen::cTypeOf(type));
  if (!kernel)
    return "no AdamW kernel for " + std::string(codegen::cTypeOf(type)) + " parameters";
  NamedArguments values = adamScalars(adam);
  values.set("param", param)
      .set("grad", grad)
      .set("exp_avg", expAvg)
      .set("exp_avg_sq", expAvgSq)
      .set("n", static_cast<long long>(n))
      .set("decay", decay ? 1 : 0);
  return launchWith(backend, *kernel, values);
}

std::string DeviceOptimizer::stepParameters(const AdamWSettings &adam) {
  if (chunk) { // the chunk's pieces: values and gradients at the same flat elements, moments from the chunk's start
    for (const ReplicaChunk::Piece &piece : chunk->pieces)
      if (std::string error = adamw(adam, plan::DType::F32, flatParams + piece.flat, flatGrads + piece.flat,
                                    shardExpAvg + (piece.flat - chunk->lo), shardExpAvgSq + (piece.flat - chunk->lo),
                                    piece.length, piece.decay);
          !error.empty())
        return "the chunk's piece at flat element " + std::to_string(piece.flat) + ": " + error;
    return {};
  }
  const plan::Plan &plan = engine.plan();
  for (const plan::Param &p : plan.params)
    if (std::string error = adamw(adam, plan.buffers[size_t(p.buffer)].dtype, engine.address(p.buffer),
                                  engine.address(p.grad), engine.address(p.expAvg), engine.address(p.expAvgSq),
                                  plan.buffers[size_t(p.buffer)].numElements(), p.weightDecay);
        !error.empty())
      return p.name + ": " + error;
  return {};
}

std::string DeviceOptimizer::step(const AdamWSettings &adam, double clipGrad, double &norm, double lossScale,
                                  bool *skipped) {
  if (skipped)
    *skipped = false;
  if (lossScale != 1.0)
    if (std::string error = scaleGradients(1.0 / lossScale); !error.empty())
      return error;
  // The distributed optimizer: the replicas' gradients summed, each receiving its chunk in place in the gradients
  // arena (whose padding stays zero), so that a replica's inf or NaN reaches the norm of its chunk's owner.
  if (replicas)
    if (std::string error = replicas->reduceScatter(flatGrads, flatGrads + replicas->rank() * chunk->chunk,
                                                    chunk->chunk, plan::DType::F32, comm::ReduceOp::Sum);
        !error.empty())
      return "the distributed optimizer's reduce-scatter: " + error;
  // The norm: each run's squares summed per block, the blocks added in order onto the running total; then the
  // ranks' totals added over the share's groups, on the device.
  if (std::string error = backend.fill(total, 0, sizeof(double)); !error.empty())
    return error;
  if (std::string error = addSharedSquares(); !error.empty())
    return error;
  if (share)
    for (comm::Communicator *group : share->groups)
      if (group)
        if (std::string error = group->allReduce(total, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
          return "the gradient norm: " + error;
  double squares = 0;
  if (std::string error = backend.copyToHost(&squares, total, sizeof squares); !error.empty())
    return error;
  norm = std::sqrt(squares);
  if (!std::isfinite(norm)) {
    if (skipped) { // an overflow under a loss scaler (whatever its scale): Megatron skips the step
      *skipped = true;
      return {};
    }
    return "the gradient norm is " + std::to_string(norm) + " (inf or NaN in a gradient)";
  }

  // Clipping, as Megatron: the gradients (the chunk's, under the distributed optimizer) times clip / (norm + 1e-6)
  // when that is below 1.
  const double coefficient = clipGrad > 0 ? clipGrad / (norm + 1e-6) : 1.0;
  if (coefficient < 1.0) {
    std::string error = chunk ? scale(flatGrads + chunk->lo, plan::DType::F32, chunk->hi - chunk->lo, coefficient)
                              : scaleGradients(coefficient);
    if (!error.empty())
      return error;
  }
  if (std::string error = stepParameters(adam); !error.empty())
    return error;
  // Every replica gets every chunk's new parameters, in place in the parameters arena.
  if (replicas)
    if (std::string error = replicas->allGather(flatParams + replicas->rank() * chunk->chunk, flatParams,
                                                chunk->chunk, plan::DType::F32);
        !error.empty())
      return "the distributed optimizer's all-gather: " + error;
  return {};
}

} // namespace megatron::device
