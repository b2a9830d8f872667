//===- ThreadCommunicator.h - Ranks as threads of one process ---*- C++ -*-===//
//
// The CPU implementation of Communicator: every rank of a job is a thread of this process and collectives work
// directly on the peers' buffers through shared memory. The buffers may also be one device's memory, which every
// rank's stream can address: then a DataMover per rank (DataMover.h) does the copies and reductions on the device
// (runtime/device/SameDeviceCommunicator.h), and everything else here is unchanged. A rendezvous per group (each rank publishes its buffers
// and what it called, generation-counted barriers) makes the copies and reductions safe; each rank then does
// 1/n of the work, so that n threads share it. docs/communicator.md describes the design.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_THREADCOMMUNICATOR_H
#define MEGATRON_RUNTIME_COMM_THREADCOMMUNICATOR_H

#include "runtime/comm/Communicator.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace megatron::comm {

namespace detail {
class WorldState;
}

struct ThreadWorldOptions {
  /// How long any operation waits for its peers before the world fails with a timeout.
  std::chrono::milliseconds timeout{600'000};
};

class DataMover;

/// The shared state of n ranks and their communicators over the whole group, named "world". Create it before
/// the rank threads start and destroy it after they are joined (runRanks does both).
class ThreadWorld {
public:
  /// `movers` (one per rank, used by that rank's thread and by the groups split off its communicator) say where
  /// the ranks' buffers live and how they are copied and reduced (DataMover.h); empty means host memory.
  explicit ThreadWorld(int size, ThreadWorldOptions options = {}, std::vector<std::shared_ptr<DataMover>> movers = {});
  ~ThreadWorld();
  ThreadWorld(const ThreadWorld &) = delete;
  ThreadWorld &operator=(const ThreadWorld &) = delete;

  int size() const;
  /// Rank `rank`'s communicator over all ranks, to be used by that rank's thread.
  Communicator &communicator(int rank);

  /// Records that rank `rank` will never call anything again (its thread is done), so that a peer waiting for it
  /// fails at once instead of at the timeout.
  void finished(int rank);

  /// The first failure: the world rank that failed (-1 while none did) and its reason.
  int failedRank() const;
  std::string failureReason() const;

private:
  std::shared_ptr<detail::WorldState> state;
  std::vector<std::unique_ptr<Communicator>> communicators;
};

/// Runs body(rank, world) on n threads of a fresh ThreadWorld and joins them. A body fails by returning an error
/// or throwing; the world is then aborted, so that its peers stop waiting. Returns "" if every body succeeded,
/// else the root cause: "rank R: " and the error returned by the rank that failed first (not the secondary errors
/// of the ranks that were waiting for it).
/// `movers`: as ThreadWorld's (empty: host memory).
std::string runRanks(int n, const std::function<std::string(int rank, Communicator &world)> &body,
                     ThreadWorldOptions options = {}, std::vector<std::shared_ptr<DataMover>> movers = {});

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_THREADCOMMUNICATOR_H
