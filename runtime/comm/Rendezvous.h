//===- Rendezvous.h - torchrun-style processes meet over TCP -----*- C++ -*-===//
//
// How processes started one per rank without mpirun (torchrun, or a shell loop: RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT) find each other. Rank 0 serves MASTER_ADDR:MASTER_PORT; every other rank connects and says who it
// is; rank 0 checks that every rank arrived exactly once and that all agree on WORLD_SIZE, within a deadline, and
// then answers. The connections stay open:
// - to carry small payloads from rank 0 (scatter, broadcast): Open MPI's server address and port names for the MPI
//   world (MpiJoin.cpp), later NCCL's unique id;
// - to watch the job (watch()): a rank whose process ends without finish() (a crash, a kill, MPI_Abort) closes its
//   connection, and every other rank hears of it, since MPI itself cannot wake a peer blocked in a call.
// Backend-neutral and MPI-free. docs/communicator.md ("torchrun") is the manual.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_RENDEZVOUS_H
#define MEGATRON_RUNTIME_COMM_RENDEZVOUS_H

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace megatron::comm {

struct RendezvousOptions {
  std::string masterAddr; // host name or address of rank 0 (rank 0 listens on every interface)
  int masterPort = 0;      // the port rank 0 serves
  /// How messages name that port, and what to do when it is taken.
  std::string portName = "MASTER_PORT";
  std::string portAdvice = "choose a free MASTER_PORT";
  int rank = 0, size = 1;
  /// How long rank 0 waits for the others to arrive, and the others for rank 0 to answer. A rank already
  /// connected waits a grace period longer (up to 30 s), so that rank 0's verdict (which ranks never arrived)
  /// reaches it.
  std::chrono::milliseconds timeout{600'000};
};

class Rendezvous {
public:
  /// Meets the other ranks. On failure nullptr and `error`, one sentence (portName naming the port):
  /// `MASTER_PORT=29500 is in use on this host ...` (rank 0), `timed out after 2 s waiting at MASTER_PORT=29500 for
  /// ranks 2, 3 of 4 (WORLD_SIZE=4): they never connected` (rank 0; the ranks that did connect get it too),
  /// `timed out after 2 s: nobody answered at MASTER_ADDR:MASTER_PORT = 10.0.0.1:29500 (Connection refused) ...`
  /// (other ranks), `rank 3 (from ...) has WORLD_SIZE=8 but rank 0 has WORLD_SIZE=4 ...`, `two processes have
  /// RANK=2 ...` (everyone connected).
  static std::unique_ptr<Rendezvous> join(const RendezvousOptions &options, std::string &error);
  /// Closes the connections, without finish(): the peers that watch take it as this process having failed.
  ~Rendezvous();

  int rank() const { return options.rank; }
  int size() const { return options.size; }
  const RendezvousOptions &settings() const { return options; }

  /// Rank 0 sends perRank[r] to every rank r (perRank is read on rank 0 only, and must have size() entries);
  /// every rank gets its own in `mine` (rank 0 included). Bounded by the timeout. Not after watch().
  std::string scatter(const std::vector<std::string> &perRank, std::string &mine);
  /// Rank 0's `data` on every rank (e.g. NCCL's 128-byte unique id). Bounded by the timeout. Not after watch().
  std::string broadcast(std::string &data);

  /// From now on a thread watches the connections until finish(): when a peer's connection closes without its
  /// finish() (its process exited or was killed: nothing is left to wake the ranks blocked in calls with it), or a
  /// peer calls fail(), `onFailure(message)` is called once, on that thread (rank 0 first forwards the message to the
  /// others). If `timeout` is positive and passes before settle(), onFailure("<timeoutWhat> timed out after ...")
  /// too: a bound on the step that follows (MPI's connecting, which nothing else can interrupt).
  void watch(std::function<void(const std::string &)> onFailure, std::chrono::milliseconds timeout = {},
             std::string timeoutWhat = "");
  /// The step that the timeout of watch() bounds is done.
  void settle();
  /// Tells the peers that this process ends normally, and stops watching. Rank 0 first waits until every other
  /// rank has finished or failed (relaying failures meanwhile), so that the job is watched until its end.
  void finish();

private:
  explicit Rendezvous(RendezvousOptions options);
  struct Watcher;

  RendezvousOptions options;
  /// Rank 0: the connection of rank r at peers[r] (peers[0] = -1). Other ranks: peers[0], the connection to rank 0.
  std::vector<int> peers;
  std::unique_ptr<Watcher> watcher;
};

/// A free TCP port of this host at the moment of the call (bound to port 0 then released), for tests.
int pickFreePort();

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_RENDEZVOUS_H
