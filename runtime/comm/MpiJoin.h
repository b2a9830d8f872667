//===- MpiJoin.h - One MPI world from processes started one by one -*- C++ -*-===//
//
// connectWorld()'s torchrun path (Launch.cpp): processes started without mpirun (torchrun, or by hand with RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT) meet over TCP (Rendezvous.h), then join into one MPI communicator that
// MpiCommunicator.h serves as the world. docs/communicator.md ("torchrun") says how and why.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_MPIJOIN_H
#define MEGATRON_RUNTIME_COMM_MPIJOIN_H

#include "runtime/comm/Launch.h"

namespace megatron::comm {

/// Joins the processes that `info` (a torchrun launch) describes and returns this rank's MPI communicator over all
/// of them, named "world", ranked by RANK. Initializes MPI (which must not be initialized yet in this process; a
/// second call returns another handle on the same world). On failure nullptr and `error`; a peer that ends
/// without finishing, and a join that exceeds the timeout once MPI is started, end this process (see Launch.h).
std::unique_ptr<Communicator> joinMpiWorld(const LaunchInfo &info, std::string &error);

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_MPIJOIN_H
