//===- MpiCommunicator.h - One process per rank, over MPI --------*- C++ -*-===//
//
// The multi-process CPU implementation of Communicator: every rank is a process started by mpirun or srun, and
// a group is an MPI communicator. It keeps the interface's contract where MPI allows and says where it cannot
// (docs/communicator.md, "MPI"):
// - Determinism: MPI's own reductions combine ranks in an implementation-defined order, so they are not used.
//   Data moves with MPI (all-to-all, all-gather) and every reduction is a local loop over the ranks in order
//   0..n-1, so the results are bitwise identical on every rank and equal to the thread implementation's.
// - Mismatched calls and bad arguments: each collective first exchanges what every rank called (an 88-byte
//   all-gather), so that every rank of the group returns the same error instead of MPI hanging or reading the
//   wrong memory.
// - Failures: MPI has no timeouts and no way to wake a peer blocked in MPI. The first error of a process is
//   remembered; every later call of that process returns at once. abort() ends the whole job (MPI_Abort), and a
//   process that failed aborts the job at the latest when its last communicator is destroyed, so that its peers
//   never wait forever. A hung peer (not a failed one) is for the launcher's timeout to catch.
//
// The header includes no MPI header: MPI is an implementation detail of the library.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_MPICOMMUNICATOR_H
#define MEGATRON_RUNTIME_COMM_MPICOMMUNICATOR_H

#include "runtime/comm/Communicator.h"

#include <memory>
#include <string>

namespace megatron::comm {

/// Whether this build has the MPI communicator (MPI was found at configure time).
bool mpiAvailable();

/// Initializes MPI if this process has not yet (MPI_Init_thread, asking for MPI_THREAD_MULTIPLE so that abort()
/// may come from any thread) and returns this process's communicator over MPI_COMM_WORLD, named "world".
/// Every MPI communicator of the process shares one MPI session: MPI is finalized when the last of them is
/// destroyed (or the job aborted, if the process failed), and cannot be initialized again afterwards.
/// Without MPI in this build, or when MPI fails to start, nullptr and `error`.
std::unique_ptr<Communicator> connectMpiWorld(std::string &error);

/// The world of processes that were not started together (a torchrun-style launch, MpiJoin.cpp): `comm` points to
/// an MPI_Comm over all of them, ranked as the job's world. The process's MPI session must have been started by
/// connectMpiWorld() (whose handle, a world of one, may be dropped afterwards); from then on the session's world is
/// this one: the world ranks in messages, and what later connectMpiWorld() calls duplicate. The session keeps
/// `comm`; the communicator returned, named "world", has its own duplicate. Without MPI, connectMpiWorld's error.
std::unique_ptr<Communicator> adoptMpiWorld(void *comm, std::string &error);

/// All-reduce switches from "all-gather every rank's buffer, reduce locally" (one MPI call, n times the data) to
/// "all-to-all the chunks, reduce one chunk, all-gather the reduced chunks" (two calls, the ring's traffic) when
/// n x count x element size exceeds this many bytes. Both give the same bits.
inline constexpr int64_t kMpiAllReduceGatherBytes = 64 * 1024;

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_MPICOMMUNICATOR_H
