//===- Reduction.h - The one reduction of every communicator ----*- C++ -*-===//
//
// Every implementation of the communicator (threads, MPI) reduces with this function, so they give the same bits:
// element by element, left to right over the ranks in rank order. Private to runtime/comm.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_REDUCTION_H
#define MEGATRON_RUNTIME_COMM_REDUCTION_H

#include "Communicator.h"

namespace megatron::comm {

/// dst[d][i] = src[0][i] op src[1][i] op ... op src[n-1][i], left to right, for every destination d < numDst.
/// Integer sums wrap around; a NaN wins a max (as in PyTorch). A block of elements is read completely before it
/// is written, so a destination may be one of the sources (in-place operations). `type` must be reducible (F32,
/// F64, I32, I64), which the callers validate before the rendezvous.
void reduceInRankOrder(DType type, ReduceOp op, const void *const *src, int n, void *const *dst, int numDst,
                       int64_t len);

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_REDUCTION_H
