//===- Launch.h - Which launcher started this process, and its world -*- C++ -*-===//
//
// megatron-run runs either as one process whose ranks are threads (ThreadCommunicator.h) or as one process per
// rank, started by a launcher: Open MPI's mpirun, SLURM's srun, or torchrun (or anything that sets torchrun's
// variables). detectLaunch() reads the launcher's environment variables and says which one started the process
// and this process's world rank, world size and local rank; it is a pure function of the environment, which tests
// pass as a map. connectWorld() then joins the other processes and returns this rank's communicator over the
// whole job, the group "world".
//
// The bootstrap is backend-neutral: connectWorld() returns a CPU communicator (MPI) over which a GPU backend
// later builds its own, e.g. rank 0 calls ncclGetUniqueId and broadcasts the 128-byte id over the world
// communicator (as 32 x i32), and every rank calls ncclCommInitRank(worldSize, id, worldRank) on the device its
// local rank selects. docs/communicator.md is the manual.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_LAUNCH_H
#define MEGATRON_RUNTIME_COMM_LAUNCH_H

#include "runtime/comm/Communicator.h"

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace megatron::comm {

enum class Launcher {
  None,     // no launcher: a single process, whose ranks are threads
  OpenMpi,  // mpirun / mpiexec of Open MPI: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK
  Slurm,    // srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
  Torchrun, // torchrun (or by hand): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
};
/// "none", "mpirun", "srun", "torchrun".
const char *toString(Launcher launcher);

/// What the launcher says about this process.
struct LaunchInfo {
  Launcher launcher = Launcher::None;
  int worldRank = 0;  // this process's rank in the job, 0 <= worldRank < worldSize
  int worldSize = 1;  // processes in the job
  int localRank = 0;  // this process's index among the job's processes on its node (selects its GPU)
  int localSize = -1; // processes of the job on this node, -1 when the launcher does not say
  /// torchrun only: where rank 0 serves the rendezvous. Empty and 0 for the other launchers.
  std::string masterAddr;
  int masterPort = 0;
  /// torchrun only: the port that rank 0 serves for the rendezvous, and its name in messages: MASTER_PORT; or
  /// MEGATRON_RENDEZVOUS_PORT if set; else MASTER_PORT+1 when torchrun's agent serves MASTER_PORT itself
  /// (TORCHELASTIC_USE_AGENT_STORE=True: its c10d store, for the workers' init_process_group).
  int rendezvousPort = 0;
  std::string rendezvousPortName;
  /// torchrun only: the longest the ranks wait for each other at the rendezvous, and then again to join the MPI
  /// world. MEGATRON_RENDEZVOUS_TIMEOUT (seconds) if set, else 600 s; a caller may override it.
  std::chrono::milliseconds rendezvousTimeout{600'000};

  /// One process per rank (a launcher started it), as opposed to ranks as threads.
  bool multiProcess() const { return launcher != Launcher::None; }
  /// E.g. `mpirun: world rank 2 of 4, local rank 2 of 4`.
  std::string describe() const;
};

/// Environment variables, name -> value.
using Environment = std::map<std::string, std::string>;

/// The variables of this process that detectLaunch() reads (only those, not the whole environment).
Environment processEnvironment();

/// Which launcher started the process, from its environment. When the variables of several launchers are
/// present, the first complete set of these wins:
///   1. Open MPI (OMPI_COMM_WORLD_*): mpirun started this very process. Inside a SLURM allocation the SLURM_*
///      variables describe the step that ran mpirun, not the ranks, so they are ignored.
///   2. torchrun (RANK, WORLD_SIZE): under `srun torchrun`, SLURM_* describe the torchrun agent (one per node),
///      RANK and WORLD_SIZE the worker, i.e. this process. MEGATRON_RENDEZVOUS_TIMEOUT (seconds, e.g. "30" or
///      "0.5") sets rendezvousTimeout.
///   3. SLURM (SLURM_PROCID, SLURM_NTASKS): srun started this process. The step's task count
///      (SLURM_STEP_NUM_TASKS) is preferred to SLURM_NTASKS when both are set.
/// Open MPI's and torchrun's variables together must agree on rank and size (mpirun running torchrun, or a stale
/// RANK exported in the shell, is an error rather than a guess). On an error, returns a LaunchInfo with launcher
/// None and sets `error` to one message naming the variable: a missing companion (`OMPI_COMM_WORLD_RANK is set
/// but OMPI_COMM_WORLD_SIZE is not`), a value that is not a decimal integer, a size below 1, a rank or local rank
/// outside its range, a bad MASTER_PORT. `error` is cleared on success.
LaunchInfo detectLaunch(const Environment &env, std::string &error);

/// Joins the other processes of the job that `info` describes and returns this rank's communicator over all of
/// them, named "world", whose rank() and size() are info.worldRank and info.worldSize.
/// - mpirun, srun: MPI (MpiCommunicator.h) over MPI_COMM_WORLD; MPI is initialized here, once per process (a
///   second call returns another handle on the same world). Under srun, Open MPI must reach SLURM's PMIx
///   (`srun --mpi=pmix`); if MPI's world does not match the launcher's variables, this says so.
/// - torchrun: MPI too, over processes that no mpirun started (MpiJoin.h): they meet at MASTER_ADDR, on the port
///   info.rendezvousPort (rank 0 serves it; Rendezvous.h), rank 0 starts Open MPI's ompi-server, and the ranks
///   connect into one MPI communicator, in RANK order. Errors, within info.rendezvousTimeout: the port in use, ranks
///   that never arrive (named), a WORLD_SIZE that differs between ranks, a RANK given twice. Since MPI_Abort ends
///   only its own process here, the rendezvous's connections stay open: a rank that ends without MPI_Finalize
///   (failure, crash, kill) makes every other rank end with its name, instead of waiting forever in MPI.
/// - none: an error; ranks of a single process are threads (ThreadWorld, runRanks).
/// On failure, nullptr and `error`.
std::unique_ptr<Communicator> connectWorld(const LaunchInfo &info, std::string &error);

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_LAUNCH_H
