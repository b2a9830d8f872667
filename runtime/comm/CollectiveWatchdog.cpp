//===- CollectiveWatchdog.cpp - Bounds asynchronous collectives by the world's timeout ----===//

#include "CollectiveWatchdog.h"

#include <algorithm>
#include <cstdio>

namespace megatron::comm {

CollectiveWatchdog::CollectiveWatchdog(Options options, Stop stop) : opts(std::move(options)), stop(std::move(stop)) {
  if (opts.pollInterval <= std::chrono::milliseconds(0))
    opts.pollInterval = std::chrono::milliseconds(1);
  if (opts.background)
    thread = std::thread([this] { run(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    shuttingDown = true;
  }
  wake.notify_all();
  if (thread.joinable())
    thread.join();
}

std::chrono::steady_clock::time_point CollectiveWatchdog::now() const {
  return opts.clock ? opts.clock() : std::chrono::steady_clock::now();
}

void CollectiveWatchdog::watch(std::string operation, std::string group, Query query) {
  auto op = std::make_shared<Operation>();
  op->name = std::move(operation);
  op->group = std::move(group);
  op->query = std::move(query);
  op->issued = now();
  std::lock_guard<std::mutex> lock(mutex);
  if (!stopped)
    operations.push_back(std::move(op));
}

std::string CollectiveWatchdog::timedOut(const Operation &op) const {
  return "rank " + std::to_string(opts.rank) + ": " + op.name + " on group \"" + op.group +
         "\" did not complete within " + describeDuration(opts.timeout) + " (a peer never joined it, or hung)";
}

bool CollectiveWatchdog::poll() {
  std::lock_guard<std::mutex> polling(pollMutex);
  std::vector<std::shared_ptr<Operation>> snapshot;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopped)
      return true;
    snapshot = operations;
  }
  // Taken after the snapshot, so that no operation in it looks issued in the future.
  const std::chrono::steady_clock::time_point current = now();
  std::string message;
  // Issue order: on one stream the oldest pending operation is the one the others wait behind, the root cause.
  for (const std::shared_ptr<Operation> &op : snapshot) {
    OperationStatus status = op->query(); // without the lock: it may take the owner's locks
    if (status.state == OperationStatus::State::Done) {
      op->done = true;
      continue;
    }
    if (status.state == OperationStatus::State::Failed) {
      message = "rank " + std::to_string(opts.rank) + ": " + op->name + " on group \"" + op->group +
                "\" failed: " + status.error;
      break;
    }
    if (current - op->issued > opts.timeout) {
      message = timedOut(*op);
      break;
    }
  }
  bool fire = false, result = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    operations.erase(std::remove_if(operations.begin(), operations.end(),
                                    [](const std::shared_ptr<Operation> &op) { return op->done; }),
                     operations.end());
    if (!message.empty() && !stopped) {
      stopped = true;
      reason = message;
      operations.clear();
      fire = true;
    }
    result = stopped;
  }
  wake.notify_all(); // the thread ends once the world is stopped
  if (fire && stop)
    stop(message);
  return result;
}

void CollectiveWatchdog::dismiss() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopped = true;
    operations.clear();
  }
  wake.notify_all();
}

std::size_t CollectiveWatchdog::pending() const {
  std::lock_guard<std::mutex> lock(mutex);
  return operations.size();
}

std::string CollectiveWatchdog::failure() const {
  std::lock_guard<std::mutex> lock(mutex);
  return reason;
}

void CollectiveWatchdog::run() {
  std::unique_lock<std::mutex> lock(mutex);
  while (!shuttingDown && !stopped) {
    if (wake.wait_for(lock, opts.pollInterval, [this] { return shuttingDown || stopped; }))
      break;
    lock.unlock();
    poll();
    lock.lock();
  }
}

std::string describeBytes(int64_t bytes) {
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

std::string describeDuration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms >= 60'000 && ms % 60'000 == 0)
    return std::to_string(ms / 60'000) + (ms == 60'000 ? " minute" : " minutes");
  if (ms < 1000)
    return std::to_string(ms) + " ms";
  char text[32];
  std::snprintf(text, sizeof text, "%g s", static_cast<double>(ms) / 1000);
  return text;
}

std::string describeIssued(const CallInfo &call) {
  const bool reduces =
      call.op == CommOp::AllReduce || call.op == CommOp::ReduceScatter || call.op == CommOp::ReduceScatterDim;
  const bool perRank = call.op == CommOp::AllGather || call.op == CommOp::ReduceScatter ||
                       call.op == CommOp::AllGatherDim || call.op == CommOp::ReduceScatterDim;
  std::string text = toString(call.op);
  if (call.op == CommOp::Split)
    return text;
  text += " of " + describeBytes(call.count * call.outer * plan::bytesOf(call.type));
  if (perRank)
    text += " per rank";
  text += std::string(" (") + plan::toString(call.type);
  if (reduces)
    text += std::string(", ") + toString(call.reduce);
  if (call.op == CommOp::Broadcast)
    text += ", root " + std::to_string(call.peer);
  text += ")";
  if (call.op == CommOp::Send || call.op == CommOp::Recv) {
    text += (call.op == CommOp::Send ? " to rank " : " from rank ") + std::to_string(call.peer);
    if (call.tag != 0)
      text += " tag " + std::to_string(call.tag);
  }
  return text;
}

} // namespace megatron::comm
