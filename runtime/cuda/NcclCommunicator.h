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
// - Calls return once the work is issued: a failure surfaces at the next call or at the backend's next wait
//   (asynchronous errors are polled with ncclCommGetAsyncError before every call).
// - send/recv match in issue order per peer (NCCL has no tags); the tag is checked to be in range only.
// - There is no timeout yet: a rank that never arrives hangs its peers (a watchdog is not written).
//
// Built without the CUDA toolkit or NCCL, createNcclWorld fails with a message saying so.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_NCCLCOMMUNICATOR_H
#define MEGATRON_RUNTIME_CUDA_NCCLCOMMUNICATOR_H

#include "runtime/comm/Communicator.h"
#include "runtime/cuda/CudaBackend.h"

#include <memory>
#include <string>

namespace megatron::cuda {

/// Whether this build has NCCL.
bool haveNccl();

/// The NCCL communicator of every rank of `hostWorld` (collective over it: every rank calls this, each with the
/// backend of its own GPU), named "world" like hostWorld. `backend` must outlive it. On failure, null and `error`
/// naming the rank and NCCL's reason.
std::unique_ptr<comm::Communicator> createNcclWorld(comm::Communicator &hostWorld, CudaBackend &backend,
                                                    std::string &error);

} // namespace megatron::cuda

#endif // MEGATRON_RUNTIME_CUDA_NCCLCOMMUNICATOR_H
