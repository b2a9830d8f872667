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
  if (error = optimizer->makeLists(); !error.empty())
    return nullptr;
  return optimizer;
}

DeviceOptimizer::~DeviceOptimizer() {
  if (partial)
    backend.release(partial);
  if (listWords)
    backend.release(listWords);
}

std::string DeviceOptimizer::addLists(const std::string &op,
                                      std::map<std::vector<plan::DType>, std::vector<long long>> words,
                                      std::vector<WorkList> &lists, std::vector<long long> &hostWords) {
  for (auto &[types, list] : words) {
    WorkList work;
    const std::string role = codegen::optimizerKernelRole(types);
    for (const codegen::CudaKernel &kernel : kernels)
      if (kernel.op == op && kernel.role == role)
        work.kernel = &kernel;
    if (!work.kernel)
      return "no " + op + " kernel for " + role + " storage";
    work.first = std::int64_t(hostWords.size());
    work.count = std::int64_t(list.size()) / codegen::optimizerItemWords(op);
    hostWords.insert(hostWords.end(), list.begin(), list.end());
    if (work.count > 0)
      lists.push_back(work);
  }
  return {};
}

std::string DeviceOptimizer::makeLists() {
  using Words = std::map<std::vector<plan::DType>, std::vector<long long>>;
  const plan::Plan &plan = engine.plan();
  Words everyGradient, squares, adam;
  for (size_t i = 0; i < plan.params.size(); ++i) {
    const plan::Param &p = plan.params[i];
    const plan::Buffer &grad = plan.buffers[size_t(p.grad)];
    codegen::appendSpanItems(everyGradient[{grad.dtype}], engine.address(p.grad), grad.dtype, grad.numElements());
    if (chunk)
      continue;
    const std::byte *data = static_cast<const std::byte *>(engine.address(p.grad));
    const Runs every = {{0, grad.numElements()}};
    for (const auto &[first, count] : share ? share->runs[i] : every)
      codegen::appendSpanItems(squares[{grad.dtype}], data + first * std::int64_t(deviceBytes(grad.dtype)),
                               grad.dtype, count);
    const plan::Buffer &value = plan.buffers[size_t(p.buffer)], &moment = plan.buffers[size_t(p.expAvg)];
    codegen::AdamwTensor tensor{engine.address(p.buffer), engine.address(p.grad), engine.address(p.expAvg),
                                engine.address(p.expAvgSq), value.numElements(), p.weightDecay,
                                value.dtype, grad.dtype, moment.dtype};
    codegen::appendAdamwItems(adam[{value.dtype, grad.dtype, moment.dtype}], tensor);
  }
  Words clip;
  if (chunk) { // the chunk's runs and pieces, as the CPU trainer steps them after the reduce-scatter
    const plan::DType f32 = plan::DType::F32;
    for (const auto &[first, count] : chunk->normRuns)
      codegen::appendSpanItems(squares[{f32}], flatGrads + first, f32, count);
    codegen::appendSpanItems(clip[{f32}], flatGrads + chunk->lo, f32, chunk->hi - chunk->lo);
    // Values and gradients at the same flat elements, moments from the chunk's start.
    for (const ReplicaChunk::Piece &piece : chunk->pieces)
      codegen::appendAdamwItems(adam[{f32, f32, f32}],
                                {flatParams + piece.flat, flatGrads + piece.flat,
                                 shardExpAvg + (piece.flat - chunk->lo), shardExpAvgSq + (piece.flat - chunk->lo),
                                 piece.length, piece.decay, f32, f32, f32});
  } else {
    clip = everyGradient;
  }
  for (const codegen::CudaKernel &kernel : kernels)
    if (kernel.op == "sum_squares_finish")
      finishSquares = &kernel;
  if (!finishSquares)
    return "no sum_squares_finish kernel";
  std::vector<long long> hostWords;
  for (std::string error : {addLists("scale", everyGradient, unscaleLists, hostWords),
                            addLists("scale", clip, clipLists, hostWords),
                            addLists("sum_squares_partial", squares, squareLists, hostWords),
                            addLists("adamw", adam, adamLists, hostWords)})
    if (!error.empty())
      return error;
  if (hostWords.empty())
    return {};
  std::string error;
  listWords = static_cast<long long *>(backend.allocate(hostWords.size() * sizeof(long long), error));
  if (!listWords)
    return "the optimizer's work lists: " + error;
  return backend.copyToDevice(listWords, hostWords.data(), hostWords.size() * sizeof(long long));
}

template <typename Values>
std::string DeviceOptimizer::launchLists(const std::vector<WorkList> &lists, Values values) {
  for (const WorkList &list : lists) {
    values.set("items", static_cast<const long long *>(listWords + list.first))
        .set("count", static_cast<long long>(list.count));
    if (std::string error = launchWith(backend, *list.kernel, values); !error.empty())
      return error;
  }
  return {};
}

std::string DeviceOptimizer::step(const AdamWSettings &adam, double clipGrad, double &norm, double lossScale,
                                  bool *skipped) {
  if (skipped)
    *skipped = false;
  if (lossScale != 1.0)
    if (std::string error = launchLists(unscaleLists, NamedArguments().set("factor", float(1.0 / lossScale)));
        !error.empty())
      return "unscaling the gradients: " + error;
  // The distributed optimizer: the replicas' gradients summed, each receiving its chunk in place in the gradients
  // arena (whose padding stays zero), so that a replica's inf or NaN reaches the norm of its chunk's owner.
  if (replicas)
    if (std::string error = replicas->reduceScatter(flatGrads, flatGrads + replicas->rank() * chunk->chunk,
                                                    chunk->chunk, plan::DType::F32, comm::ReduceOp::Sum);
        !error.empty())
      return "the distributed optimizer's reduce-scatter: " + error;
  // The norm: the squares of the runs this rank counts summed per block, the blocks added in order onto the
  // running total (per gradient type); then the ranks' totals added over the share's groups, on the device.
  if (std::string error = backend.fill(total, 0, sizeof(double)); !error.empty())
    return error;
  for (const WorkList &list : squareLists) {
    NamedArguments values;
    values.set("partial", partial).set("total", total);
    std::string error = launchLists({list}, values);
    if (error.empty())
      error = launchWith(backend, *finishSquares, values);
    if (!error.empty())
      return "the gradient norm: " + error;
  }
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
  if (coefficient < 1.0)
    if (std::string error = launchLists(clipLists, NamedArguments().set("factor", float(coefficient)));
        !error.empty())
      return "clipping the gradients: " + error;
  if (std::string error = launchLists(adamLists, adamScalars(adam)); !error.empty())
    return "AdamW: " + error;
  engine.weightsChanged(); // written through the work lists' addresses, which the engine cannot see
  // Every replica gets every chunk's new parameters, in place in the parameters arena.
  if (replicas)
    if (std::string error = replicas->allGather(flatParams + replicas->rank() * chunk->chunk, flatParams,
                                                chunk->chunk, plan::DType::F32);
        !error.empty())
      return "the distributed optimizer's all-gather: " + error;
  return {};
}

} // namespace megatron::device
