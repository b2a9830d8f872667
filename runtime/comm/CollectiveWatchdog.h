//===- CollectiveWatchdog.h - Bounds asynchronous collectives by the world's timeout -*- C++ -*-===//
//
// A communicator whose calls return once the work is issued (NCCL: on a CUDA stream) cannot bound its waits the way
// the host implementations do, since nothing of it waits: the rank that hangs is the one that later synchronizes
// its stream. So every issued operation is registered here with a query that says whether it finished (a CUDA
// event) or failed (NCCL's asynchronous error), and a thread polls the pending ones: finished ones are forgotten,
// and the first that failed, or that is older than the timeout, stops the world once, through a callback, with a
// message that names this rank, the operation, its group and the timeout:
//
//   rank 3: all_reduce of 12.0 MiB (bf16, sum) on group "dp" did not complete within 10 minutes (a peer never
//   joined it, or hung)
//
// This is PyTorch's ProcessGroupNCCL watchdog, reduced to its decision. It knows nothing of CUDA: the queries, the
// clock and what stopping means (NcclCommunicator.cpp: ncclCommAbort every communicator, keep the failure, abort
// the host world) are the owner's, so the decision is tested on the CPU (CollectiveWatchdogTest.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_COMM_COLLECTIVEWATCHDOG_H
#define MEGATRON_RUNTIME_COMM_COLLECTIVEWATCHDOG_H

#include "runtime/comm/Communicator.h"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace megatron::comm {

/// What a poll learns about one issued operation.
struct OperationStatus {
  enum class State { Running, Done, Failed };
  State state = State::Running;
  std::string error; // Failed: why (e.g. NCCL's asynchronous error, or the device's)

  static OperationStatus running() { return {}; }
  static OperationStatus done() { return {State::Done, {}}; }
  static OperationStatus failed(std::string why) { return {State::Failed, std::move(why)}; }
};

class CollectiveWatchdog {
public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  /// Called on the polling thread, never while the watchdog holds its lock; must not block for long.
  using Query = std::function<OperationStatus()>;
  /// Stops the world; called once, on the polling thread, with the message. Must not destroy the watchdog.
  using Stop = std::function<void(const std::string &reason)>;

  struct Options {
    int rank = 0;                                    ///< this process's rank, the first word of every message
    std::chrono::milliseconds timeout{600'000};      ///< an operation's longest life (Megatron's 10 minutes)
    std::chrono::milliseconds pollInterval{100};     ///< how often the thread polls
    bool background = true;                          ///< false: no thread, the owner calls poll() (tests)
    Clock clock;                                     ///< empty: std::chrono::steady_clock::now
  };

  CollectiveWatchdog(Options options, Stop stop);
  /// Stops polling and joins the thread (waiting at most for one poll in progress); pending operations are
  /// forgotten, never reported.
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog &) = delete;
  CollectiveWatchdog &operator=(const CollectiveWatchdog &) = delete;

  /// Registers an operation issued now: `operation` names it ("all_reduce of 12.0 MiB (bf16, sum)", see
  /// describeIssued), `group` its group. Ignored once the watchdog has stopped or been dismissed.
  void watch(std::string operation, std::string group, Query query);

  /// One pass over the pending operations, in issue order: the first that failed or timed out stops the world
  /// (only once, ever). Returns whether the world is stopped (now or before) or the watchdog dismissed.
  /// Thread-safe; the background thread calls it every pollInterval.
  bool poll();

  /// The world failed for another reason (its owner keeps that one): forget every pending operation and never
  /// call stop. Callable from any thread, the stop callback included.
  void dismiss();

  /// Operations registered and not yet seen finished.
  std::size_t pending() const;
  /// The message the watchdog stopped the world with, or "".
  std::string failure() const;
  const Options &options() const { return opts; }

private:
  struct Operation {
    std::string name, group;
    std::chrono::steady_clock::time_point issued;
    Query query;
    bool done = false;
  };

  std::chrono::steady_clock::time_point now() const;
  std::string timedOut(const Operation &op) const;
  void run();

  Options opts;
  Stop stop;
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::vector<std::shared_ptr<Operation>> operations; // issue order; guarded by mutex
  bool stopped = false;                               // stopped or dismissed; guarded by mutex
  bool shuttingDown = false;                          // guarded by mutex
  std::string reason;                                 // guarded by mutex
  std::mutex pollMutex;                               // one poll at a time
  std::thread thread;                                 // last: started once the rest exists
};

/// An issued operation as the watchdog names it: `all_reduce of 12.0 MiB (bf16, sum)`, `all_gather of 256.0 KiB
/// per rank (f32)`, `broadcast of 40 B (f32, root 0)`, `send of 1.5 KiB (f16) to rank 2`, `recv ... from rank 0`.
std::string describeIssued(const CallInfo &call);
/// A byte count: `40 B`, `1.5 KiB`, `12.0 MiB`, `2.0 GiB`.
std::string describeBytes(int64_t bytes);
/// A timeout: `10 minutes`, `1 minute`, `2.5 minutes`, `30 s`, `1.5 s`, `250 ms`.
std::string describeDuration(std::chrono::milliseconds duration);

} // namespace megatron::comm

#endif // MEGATRON_RUNTIME_COMM_COLLECTIVEWATCHDOG_H
