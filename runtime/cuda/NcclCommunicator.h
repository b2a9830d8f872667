//===- NcclCommunicator.h - comm::Communicator on NCCL, for device buffers ---*- C++ -*-===//
//
// One process per GPU (mpirun, srun, torchrun's variables: runtime/comm/Launch.h): the device engine's collectives
// on NCCL, issued on the CUDA backend's stream so that they are ordered with the kernels around them. The buffers
// are device pointers of that backend. The host world the launcher bootstrapped (MPI, or the TCP rendezvous)
// carries NCCL's unique id from rank 0 to the others; every group after that is split off with ncclCommSplit.
//
// Where NCCL differs from comm::Communicator's contract (docs/communicator.md, "NCCL"):
// - Reductions are NCCL's: its ring or tree order, not rank order; every rank still ends with the same bits.
//   bf16 and f16 are reduced (NCCL sums in f32 inside each step and rounds between steps), where the CPU
//   implementations refuse 16-bit types.
// - Calls return once the work is enqueued on the stream, not when it is done. Every wait is still bounded by the
//   world's timeout (NcclWorldOptions): the communicators are non-blocking, so enqueueing, ncclCommSplit and the
//   initialization are polled against the deadline; and a watchdog thread (runtime/comm/CollectiveWatchdog.h)
//   follows every enqueued operation through a CUDA event recorded behind it and NCCL's asynchronous error.
// - The first failure stops the world: an NCCL error, an operation older than the timeout ("rank 3: all_reduce of
//   12.0 MiB (bf16, sum) on group "dp" did not complete within 10 minutes (a peer never joined it, or hung)"),
//   a bad call, or abort(). Then every communicator of this process is ncclCommAbort-ed (kernels waiting in NCCL
//   exit, so the backend's stream waits return), every later call returns that failure, and the host world that
//   bootstrapped NCCL is aborted (MPI: the job ends, so peers blocked in NCCL or MPI stop too).
// - send/recv match in issue order per peer (NCCL has no tags); the tag is checked to be in range only.
//
// Built without the CUDA toolkit or NCCL, createNcclWorld fails with a message saying so.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_NCCLCOMMUNICATOR_H
#define MEGATRON_RUNTIME_CUDA_NCCLCOMMUNICATOR_H

#include "runtime/comm/Communicator.h"
#include "runtime/cuda/CudaBackend.h"

#include <chrono>
#include <memory>
#include <string>

namespace megatron::cuda {

/// Whether this build has NCCL.
bool haveNccl();

struct NcclWorldOptions {
  /// How long any operation may take, from its issue to its completion on the GPU, and how long initialization,
  /// splits and destruction may wait for the peers (megatron-run: --distributed-timeout-minutes, default 10).
  std::chrono::milliseconds timeout{600'000};
};

/// The NCCL communicator of every rank of `hostWorld` (collective over it: every rank calls this, each with the
/// backend of its own GPU), named "world" like hostWorld. `backend` and `hostWorld` must outlive it and every group
/// split off it (a failure aborts hostWorld, from the watchdog's thread too). On failure, null and `error` naming the
/// rank and NCCL's reason (or the timeout), and hostWorld aborted.
std::unique_ptr<comm::Communicator> createNcclWorld(comm::Communicator &hostWorld, CudaBackend &backend,
                                                    std::string &error, const NcclWorldOptions &options = {});

} // namespace megatron::cuda

#endif // MEGATRON_RUNTIME_CUDA_NCCLCOMMUNICATOR_H
