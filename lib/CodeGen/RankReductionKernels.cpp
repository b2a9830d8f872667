//===- RankReductionKernels.cpp - The same-device communicator's reduction ------===//
//
// One kernel per (storage type, sum or max, grid): the buffers, their number and the length are run-time
// arguments, so a communicator prepares each kernel once and launches it for every collective of that type.
//
//===----------------------------------------------------------------------===//

#include "megatron/CodeGen/CudaKernels.h"

#include "KernelEmitter.h"

namespace megatron::codegen {

using namespace detail;

CudaKernel rankReductionKernel(plan::DType type, bool max, int64_t elements) {
  plan::Plan none;
  plan::Step operation;
  operation.op = "reduce_ranks";
  const std::string t = cTypeOf(type);
  KernelEmitter e(none, operation, std::string(max ? "max_" : "sum_") + plan::toString(type), {"RankReduction.cuh"});
  std::string sources = e.runtime("sources", "mt::RankPointers"),
              destinations = e.runtime("destinations", "mt::RankPointers"), ranks = e.runtime("ranks", "int"),
              count = e.runtime("destination_count", "int"), n = e.runtime("n", "long long");
  e.body(deviceCall("reduceRanks", {t, max ? "true" : "false"}, {sources, destinations, ranks, count, n}));
  // Two grids: a few blocks for small buffers (the tensor-parallel all-reduces of small models, and the
  // simulator, where every launched thread costs), enough to fill a GPU's memory bandwidth for large ones.
  e.launch = gridStride(elements <= kSmallRankReduction ? 16 * kThreads : 264 * kThreads);
  std::string error;
  CudaKernel kernel = e.finish(error); // reads no attribute: cannot fail
  return kernel;
}

} // namespace megatron::codegen
