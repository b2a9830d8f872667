//===- ThreadCommunicator.cpp - Ranks as threads of one process ------------===//
//
// A collective is two rounds of a barrier on the group's state, with the work between them:
//   entry round: each rank publishes its buffers and what it called (a Slot); the last to arrive compares the
//                calls, so that mismatched collectives fail here instead of reading the wrong memory;
//   work:        each rank copies or reduces its 1/n share, reading (and for all_reduce writing) the peers'
//                buffers directly, through its DataMover (host memcpy, or a device's stream: DataMover.h), which
//                publish() readies before the entry round and complete() finishes before the exit round;
//   exit round:  nobody returns, and so nobody frees or reuses a buffer, while a peer may still touch it.
// A share that fails (a device copy, a kernel) fails the world before its rank enters the exit round, and every
// rank of the collective returns the error.
// Waits at the entry round are bounded by the timeout and end early when the world fails; a rank that gives up
// withdraws its arrival under the lock, so the round can never complete without it. The exit round waits for
// peers that are already past the entry round and only copying, which takes bounded time.
//
// Locks: each group has one mutex and condition variable (a rank waits in one group at a time). The world's
// mutex only guards its failure record and list of groups; it is never held while a group's mutex is taken, so
// failing the world from any thread cannot deadlock.
//
//===----------------------------------------------------------------------===//

#include "ThreadCommunicator.h"

#include "DataMover.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>
#include <tuple>
#include <type_traits>

namespace megatron::comm {
namespace detail {

using Clock = std::chrono::steady_clock;

struct Failure {
  int worldRank = -1;
  std::string group;
  int groupRank = -1;
  bool groupIsWorld = true;
  std::string reason;
};

class GroupState;

class WorldState {
public:
  WorldState(int size, ThreadWorldOptions options) : size(size), options(options), finishedRanks(size) {}

  const int size;
  const ThreadWorldOptions options;

  bool failed() const { return hasFailed.load(std::memory_order_acquire); }
  /// Valid once failed() is true; never changes afterwards.
  const Failure &failure() const { return first; }

  /// Poisons the world (the first failure wins) and wakes every waiter. Never call it holding a group's mutex.
  void fail(Failure failure) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (hasFailed.load(std::memory_order_relaxed))
        return;
      first = std::move(failure);
      hasFailed.store(true, std::memory_order_release);
    }
    wakeAll();
  }

  void finish(int worldRank) {
    finishedRanks[worldRank].store(true, std::memory_order_release);
    wakeAll();
  }
  bool isFinished(int worldRank) const { return finishedRanks[worldRank].load(std::memory_order_acquire); }

  void add(const std::shared_ptr<GroupState> &group) {
    std::lock_guard<std::mutex> lock(mutex);
    groups.erase(std::remove_if(groups.begin(), groups.end(), [](auto &g) { return g.expired(); }), groups.end());
    groups.push_back(group);
  }

private:
  void wakeAll();

  std::atomic<bool> hasFailed{false};
  Failure first;
  std::vector<std::atomic<bool>> finishedRanks;
  std::mutex mutex;
  std::vector<std::weak_ptr<GroupState>> groups;
};

/// What one rank published for the operation in progress.
struct Slot {
  CallInfo call;
  const void *send = nullptr;
  void *recv = nullptr; // the data of in-place operations
  int color = 0, key = 0;
  std::string splitName;
};

struct SplitResult {
  std::shared_ptr<GroupState> group; // null for a negative color
  int rank = -1;
};

/// A receive waiting for its message; the sender copies straight into `data`.
struct PostedRecv {
  void *data;
  CallInfo call;
  bool done = false;
  std::string error;
};

/// A message sent before its receive was posted, copied out (by the sender's data mover) so that the sender
/// can go on.
struct Message {
  CallInfo call;
  std::shared_ptr<void> bytes;
};

/// The messages of one (sender, receiver, tag), in the order they were sent, and the receive waiting for the next.
struct Channel {
  std::deque<Message> pending;
  PostedRecv *posted = nullptr;
};

/// (sender, receiver, tag), group ranks.
using ChannelKey = std::tuple<int, int, int>;

class GroupState {
public:
  GroupState(std::shared_ptr<WorldState> world, std::string name, std::vector<int> worldRanks, bool isWorld)
      : world(std::move(world)), name(std::move(name)), worldRanks(std::move(worldRanks)), isWorld(isWorld),
        arrivedIn(this->worldRanks.size(), kNotArrived), slots(this->worldRanks.size()),
        splitResults(this->worldRanks.size()) {}

  int size() const { return static_cast<int>(worldRanks.size()); }

  static constexpr uint64_t kNotArrived = ~uint64_t(0);

  const std::shared_ptr<WorldState> world;
  const std::string name;
  const std::vector<int> worldRanks; // group rank -> world rank
  const bool isWorld;

  std::mutex mutex;
  std::condition_variable cv;
  // Guarded by `mutex`.
  uint64_t generation = 0;         // rounds completed
  int arrived = 0;                 // ranks in the current round
  std::vector<uint64_t> arrivedIn; // the round each rank last arrived in, to name the missing ones
  std::vector<Slot> slots;
  std::string roundError; // set when the entry round that just completed found mismatched calls
  uint64_t failedExitRound = kNotArrived; // the exit round in which a rank's share of the work failed
  std::vector<SplitResult> splitResults;
  std::map<ChannelKey, Channel> channels; // made by a send or recv; the receiver erases the ones it leaves empty
};

void WorldState::wakeAll() {
  std::vector<std::shared_ptr<GroupState>> live;
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto &g : groups)
      if (auto group = g.lock())
        live.push_back(std::move(group));
  }
  // Taking each group's mutex orders the wake-up after any waiter's check of the flags: none can miss it.
  for (auto &group : live) {
    { std::lock_guard<std::mutex> lock(group->mutex); }
    group->cv.notify_all();
  }
}

} // namespace detail

namespace {

using detail::Clock;
using detail::Failure;
using detail::GroupState;
using detail::Slot;

std::string formatSeconds(std::chrono::milliseconds timeout) {
  char text[32];
  std::snprintf(text, sizeof(text), timeout.count() % 100 == 0 ? "%.1f s" : "%.3f s", timeout.count() / 1000.0);
  return text;
}

std::string rankList(const std::vector<int> &ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

const char *at(const void *base, int64_t elements, int64_t elementBytes) {
  return static_cast<const char *>(base) + elements * elementBytes;
}
char *at(void *base, int64_t elements, int64_t elementBytes) {
  return static_cast<char *>(base) + elements * elementBytes;
}

//===- The communicator ------------------------------------------------------===//

class ThreadCommunicator final : public Communicator {
public:
  ThreadCommunicator(std::shared_ptr<GroupState> group, int rank, std::shared_ptr<DataMover> mover)
      : group(std::move(group)), myRank(rank), mover(std::move(mover)) {}

  int rank() const override { return myRank; }
  int size() const override { return group->size(); }
  const std::string &name() const override { return group->name; }

  std::string allReduce(void *data, int64_t count, DType type, ReduceOp op) override {
    Slot slot{{CommOp::AllReduce, type, op, count, 1, -1}, data, data};
    return collective(std::move(slot), [&](const std::vector<Slot> &slots) {
      // This rank reduces its chunk of the array and writes the result into every rank's buffer.
      const int n = size();
      const int64_t eb = plan::bytesOf(type), begin = count * myRank / n, end = count * (myRank + 1) / n;
      if (begin == end)
        return std::string();
      std::vector<const void *> src(n);
      std::vector<void *> dst(n);
      for (int k = 0; k < n; ++k)
        src[k] = dst[k] = at(slots[k].recv, begin, eb);
      return mover->reduce(type, op, src.data(), n, dst.data(), n, end - begin);
    });
  }

  std::string allGather(const void *send, void *recv, int64_t countPerRank, DType type) override {
    Slot slot{{CommOp::AllGather, type, ReduceOp::Sum, countPerRank, 1, -1}, send, recv};
    return collective(std::move(slot), [&](const std::vector<Slot> &slots) {
      const int64_t bytes = countPerRank * plan::bytesOf(type);
      for (int k = 0; bytes > 0 && k < size(); ++k)
        if (char *to = at(recv, k * countPerRank, plan::bytesOf(type)); to != slots[k].send)
          if (std::string error = mover->copy(to, slots[k].send, bytes); !error.empty())
            return error;
      return std::string();
    });
  }

  std::string reduceScatter(const void *send, void *recv, int64_t countPerRank, DType type, ReduceOp op) override {
    Slot slot{{CommOp::ReduceScatter, type, op, countPerRank, 1, -1}, send, recv};
    return collective(std::move(slot), [&](const std::vector<Slot> &slots) {
      const int n = size();
      std::vector<const void *> src(n);
      for (int k = 0; k < n; ++k)
        src[k] = at(slots[k].send, myRank * countPerRank, plan::bytesOf(type));
      return countPerRank == 0 ? std::string() : mover->reduce(type, op, src.data(), n, &recv, 1, countPerRank);
    });
  }

  std::string broadcast(void *data, int64_t count, DType type, int root) override {
    Slot slot{{CommOp::Broadcast, type, ReduceOp::Sum, count, 1, root}, data, data};
    return collective(std::move(slot), [&](const std::vector<Slot> &slots) {
      if (count > 0 && data != slots[root].recv)
        return mover->copy(data, slots[root].recv, count * plan::bytesOf(type));
      return std::string();
    });
  }

  std::string allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type) override {
    Slot slot{{CommOp::AllGatherDim, type, ReduceOp::Sum, chunk, outer, -1}, send, recv};
    return collective(std::move(slot), [&](const std::vector<Slot> &slots) {
      const int n = size();
      const int64_t bytes = chunk * plan::bytesOf(type);
      for (int64_t o = 0; bytes > 0 && o < outer; ++o)
        for (int k = 0; k < n; ++k)
          if (std::string error = mover->copy(at(recv, o * n + k, bytes), at(slots[k].send, o, bytes), bytes);
              !error.empty())
            return error;
      return std::string();
    });
  }

  std::string reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                               ReduceOp op) override {
    Slot slot{{CommOp::ReduceScatterDim, type, op, chunk, outer, -1}, send, recv};
    return collective(std::move(slot), [&](const std::vector<Slot> &slots) {
      const int n = size();
      const int64_t bytes = chunk * plan::bytesOf(type);
      std::vector<const void *> src(n);
      for (int64_t o = 0; bytes > 0 && o < outer; ++o) {
        for (int k = 0; k < n; ++k)
          src[k] = at(slots[k].send, o * n + myRank, bytes);
        void *dst = at(recv, o, bytes);
        if (std::string error = mover->reduce(type, op, src.data(), n, &dst, 1, chunk); !error.empty())
          return error;
      }
      return std::string();
    });
  }

  std::string send(const void *data, int64_t count, DType type, int peer, int tag) override;
  std::string recv(void *data, int64_t count, DType type, int peer, int tag) override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string &name, std::string &error) override;

  void abort(const std::string &reason) override {
    group->world->fail(Failure{group->worldRanks[myRank], group->name, myRank, group->isWorld, reason});
  }

private:
  template <typename Work> std::string collective(Slot slot, Work &&work);
  void completeEntryRound(GroupState &g);
  std::string waitingError(const CallInfo &call, uint64_t round, Clock::time_point deadline, bool &poison);
  std::string failureMessage(const CallInfo &call, bool waited) const;
  std::string poison(std::string error) {
    abort(error);
    return error;
  }

  std::shared_ptr<GroupState> group;
  const int myRank;
  const std::shared_ptr<DataMover> mover; // how this rank's copies and reductions reach the buffers
};

// How this rank reports a failure of the world that it did not cause itself.
std::string ThreadCommunicator::failureMessage(const CallInfo &call, bool waited) const {
  const Failure &f = group->world->failure();
  std::string text = "rank " + std::to_string(f.groupRank) + " of group \"" + f.group + "\"";
  if (!f.groupIsWorld)
    text += " (world rank " + std::to_string(f.worldRank) + ")";
  text += " failed (" + f.reason + ")";
  text += waited ? " while rank " + std::to_string(myRank) + " waited in " : " before rank " + std::to_string(myRank) + " called ";
  return text + call.describe(group->name);
}

// Why a rank waiting in entry round `round` must give up now, or "". Called with the group's mutex held.
std::string ThreadCommunicator::waitingError(const CallInfo &call, uint64_t round, Clock::time_point deadline,
                                             bool &poison) {
  GroupState &g = *group;
  poison = false;
  if (g.world->failed())
    return failureMessage(call, /*waited=*/true);
  std::vector<int> missing, finished;
  for (int r = 0; r < g.size(); ++r)
    if (g.arrivedIn[r] != round) {
      missing.push_back(r);
      if (g.world->isFinished(g.worldRanks[r]))
        finished.push_back(r);
    }
  poison = true;
  if (!finished.empty())
    return "gave up in " + call.describe(g.name) + ": " + rankList(finished) + " finished without calling it";
  if (Clock::now() >= deadline)
    return "timed out after " + formatSeconds(g.world->options.timeout) + " in " + call.describe(g.name) + ": " +
           rankList(missing) + " never arrived";
  poison = false;
  return "";
}

template <typename Work> std::string ThreadCommunicator::collective(Slot slot, Work &&work) {
  const CallInfo call = slot.call;
  if (std::string problem = call.validate(size(), slot.send, slot.recv, mover->reduces(call.type));
      !problem.empty())
    return poison(call.describe(name()) + ": " + problem);
  // The peers read (and write) this rank's buffers as soon as the entry round completes.
  if (call.op != CommOp::Split)
    if (std::string error = mover->publish(); !error.empty())
      return poison(call.describe(name()) + ": " + error);
  GroupState &g = *group;
  std::unique_lock<std::mutex> lock(g.mutex);
  if (g.world->failed())
    return failureMessage(call, /*waited=*/false);

  // Entry round.
  const uint64_t round = g.generation;
  g.slots[myRank] = std::move(slot);
  g.arrivedIn[myRank] = round;
  if (++g.arrived == g.size()) {
    completeEntryRound(g);
  } else {
    const Clock::time_point deadline = Clock::now() + g.world->options.timeout;
    while (g.generation == round) {
      bool poisons = false;
      if (std::string error = waitingError(call, round, deadline, poisons); !error.empty()) {
        // Withdraw, so that the round cannot complete and nobody touches this rank's buffers. arrivedIn stays: the
        // others must not report this rank as missing. It cannot arrive again, since the world is failed (or
        // about to be, by this rank) before it returns.
        --g.arrived;
        lock.unlock();
        return poisons ? poison(error) : error;
      }
      g.cv.wait_until(lock, deadline);
    }
  }
  if (!g.roundError.empty()) { // mismatched calls: nobody touches any buffer
    std::string error = g.roundError;
    lock.unlock();
    return poison(error);
  }
  lock.unlock();

  // Nobody writes the slots before the exit round completes, so they can be read without the lock.
  std::string workError = work(g.slots);
  if (workError.empty())
    workError = mover->complete();
  // A failed copy or reduction may have left any rank's buffer half written: the world fails before this rank
  // arrives at the exit round, so that every peer sees it when the round completes.
  if (!workError.empty()) {
    workError = call.describe(name()) + ": " + workError + " (" + mover->describe() + ")";
    abort(workError);
  }

  // Exit round. It does not give up on failures: the peers still in it are only copying, and leaving early would
  // let the caller free a buffer that they read.
  lock.lock();
  const uint64_t exitRound = g.generation;
  g.arrivedIn[myRank] = exitRound;
  if (!workError.empty())
    g.failedExitRound = exitRound;
  if (++g.arrived == g.size()) {
    g.arrived = 0;
    ++g.generation;
    g.cv.notify_all();
  } else {
    g.cv.wait(lock, [&] { return g.generation != exitRound; });
  }
  const bool peerFailed = g.failedExitRound == exitRound;
  lock.unlock();
  if (!workError.empty())
    return workError;
  if (peerFailed) // a peer's share of this collective failed (and failed the world)
    return failureMessage(call, /*waited=*/true);
  return "";
}

// Run by the last rank to arrive, with the mutex held: compares the calls (and does the bookkeeping of a split),
// then releases the others.
void ThreadCommunicator::completeEntryRound(GroupState &g) {
  g.roundError.clear();
  const Slot &first = g.slots[0];
  for (int r = 1; r < g.size() && g.roundError.empty(); ++r)
    if (!g.slots[r].call.sameAs(first.call))
      g.roundError = "mismatched calls: rank 0 called " + first.call.describe(g.name) + ", rank " +
                     std::to_string(r) + " called " + g.slots[r].call.describe(g.name);

  if (g.roundError.empty() && first.call.op == CommOp::Split) {
    std::map<int, std::vector<int>> members; // color -> ranks here
    for (int r = 0; r < g.size(); ++r)
      if (g.slots[r].color >= 0)
        members[g.slots[r].color].push_back(r);
    for (auto &[color, ranks] : members) {
      std::stable_sort(ranks.begin(), ranks.end(), [&](int a, int b) { return g.slots[a].key < g.slots[b].key; });
      const std::string &newName = g.slots[ranks[0]].splitName;
      std::vector<int> worldRanks;
      for (int r : ranks) {
        if (g.slots[r].splitName != newName && g.roundError.empty())
          g.roundError = "mismatched calls: ranks " + std::to_string(ranks[0]) + " and " + std::to_string(r) +
                         " called " + first.call.describe(g.name) + " with color " + std::to_string(color) +
                         " but names \"" + newName + "\" and \"" + g.slots[r].splitName + "\"";
        worldRanks.push_back(g.worldRanks[r]);
      }
      auto newGroup = std::make_shared<GroupState>(g.world, newName, std::move(worldRanks), /*isWorld=*/false);
      g.world->add(newGroup);
      for (size_t i = 0; i < ranks.size(); ++i)
        g.splitResults[ranks[i]] = {newGroup, static_cast<int>(i)};
    }
    for (int r = 0; r < g.size(); ++r)
      if (g.slots[r].color < 0)
        g.splitResults[r] = {};
  }
  g.arrived = 0;
  ++g.generation;
  g.cv.notify_all();
}

std::unique_ptr<Communicator> ThreadCommunicator::split(int color, int key, const std::string &newName,
                                                        std::string &error) {
  Slot slot;
  slot.call.op = CommOp::Split;
  slot.color = color;
  slot.key = key;
  slot.splitName = newName;
  detail::SplitResult result;
  error = collective(std::move(slot), [&](const std::vector<Slot> &) {
    result = group->splitResults[myRank];
    return std::string();
  });
  if (!error.empty() || !result.group)
    return nullptr;
  return std::make_unique<ThreadCommunicator>(std::move(result.group), result.rank, mover);
}

static bool matches(const CallInfo &sent, const CallInfo &expected) {
  return sent.count == expected.count && sent.type == expected.type;
}

static std::string p2pMismatch(const std::string &group, int sender, const CallInfo &sent, int receiver,
                               const CallInfo &expected) {
  return "mismatched calls: rank " + std::to_string(sender) + " called " + sent.describe(group) + ", rank " +
         std::to_string(receiver) + " called " + expected.describe(group);
}

std::string ThreadCommunicator::send(const void *data, int64_t count, DType type, int peer, int tag) {
  const CallInfo call{CommOp::Send, type, ReduceOp::Sum, count, 1, peer, tag};
  if (std::string problem = call.validate(size(), data, data); !problem.empty())
    return poison(call.describe(name()) + ": " + problem);
  if (std::string error = mover->publish(); !error.empty()) // the message's bytes are written
    return poison(call.describe(name()) + ": " + error);
  GroupState &g = *group;
  const int64_t bytes = count * plan::bytesOf(type);
  std::unique_lock<std::mutex> lock(g.mutex);
  if (g.world->failed())
    return failureMessage(call, /*waited=*/false);
  const detail::ChannelKey key{myRank, peer, tag};
  detail::Channel &channel = g.channels[key];
  if (channel.posted && channel.pending.empty()) { // the receiver waits: copy straight into its buffer
    detail::PostedRecv &post = *channel.posted;
    channel.posted = nullptr;
    post.done = true;
    if (!matches(call, post.call)) {
      post.error = p2pMismatch(g.name, myRank, call, peer, post.call);
    } else if (bytes > 0) {
      std::string failure = mover->copy(post.data, data, size_t(bytes));
      if (failure.empty())
        failure = mover->complete();
      if (!failure.empty())
        post.error = call.describe(g.name) + ": " + failure + " (" + mover->describe() + ")";
    }
    std::string error = post.error; // `post` dies as soon as the receiver wakes
    g.cv.notify_all();
    lock.unlock();
    return error.empty() ? "" : poison(error);
  }
  lock.unlock();
  detail::Message message{call, nullptr};
  if (std::string error = mover->stage(data, size_t(bytes), message.bytes); !error.empty())
    return poison(call.describe(name()) + ": " + error + " (" + mover->describe() + ")");
  lock.lock();
  if (g.world->failed())
    return failureMessage(call, /*waited=*/false);
  // Looked up again: while the lock was released, the receiver may have emptied and erased the channel.
  g.channels[key].pending.push_back(std::move(message));
  g.cv.notify_all();
  return "";
}

// The tags of the messages from `sender` to `receiver` that wait for a receive, for a timeout's message: a
// receive that waits for a tag nobody sends while other tags pile up is the typical pipeline schedule bug.
static std::string waitingTags(const GroupState &g, int sender, int receiver) {
  std::string tags;
  int shown = 0, more = 0;
  for (auto it = g.channels.lower_bound({sender, receiver, 0});
       it != g.channels.end() && std::get<0>(it->first) == sender && std::get<1>(it->first) == receiver; ++it) {
    if (it->second.pending.empty())
      continue;
    if (shown++ < 8)
      tags += (tags.empty() ? "" : ", ") + std::to_string(std::get<2>(it->first));
    else
      ++more;
  }
  if (tags.empty())
    return "";
  if (more)
    tags += " and " + std::to_string(more) + " more";
  return " (its messages with " + std::string(shown > 1 ? "tags " : "tag ") + tags + " wait unreceived)";
}

std::string ThreadCommunicator::recv(void *data, int64_t count, DType type, int peer, int tag) {
  const CallInfo call{CommOp::Recv, type, ReduceOp::Sum, count, 1, peer, tag};
  if (std::string problem = call.validate(size(), data, data); !problem.empty())
    return poison(call.describe(name()) + ": " + problem);
  if (std::string error = mover->publish(); !error.empty()) // the sender may write `data` at once
    return poison(call.describe(name()) + ": " + error);
  GroupState &g = *group;
  std::unique_lock<std::mutex> lock(g.mutex);
  if (g.world->failed())
    return failureMessage(call, /*waited=*/false);
  // Only this rank's thread receives on the channel, and only it erases the channel (below, when it leaves it
  // with no message and no receive posted): `channel` stays valid while this call waits.
  const detail::ChannelKey key{peer, myRank, tag};
  detail::Channel &channel = g.channels[key];
  auto leave = [&] { // with the lock held
    channel.posted = nullptr;
    if (channel.pending.empty())
      g.channels.erase(key);
  };
  detail::PostedRecv post{data, call};
  bool posted = false;
  const Clock::time_point deadline = Clock::now() + g.world->options.timeout;
  while (true) {
    if (post.done) { // the sender copied (or found a mismatch and failed the world)
      leave();
      lock.unlock();
      return post.error.empty() ? "" : poison(post.error);
    }
    std::string error;
    bool poisons = true;
    if (g.world->failed()) {
      error = failureMessage(call, /*waited=*/true);
      poisons = false;
    } else if (!channel.pending.empty()) {
      detail::Message message = std::move(channel.pending.front());
      channel.pending.pop_front();
      leave();
      lock.unlock();
      if (!matches(message.call, call))
        return poison(p2pMismatch(g.name, peer, message.call, myRank, call));
      const size_t bytes = size_t(count * plan::bytesOf(type));
      if (bytes > 0) {
        std::string failure = mover->copy(data, message.bytes.get(), bytes);
        if (failure.empty())
          failure = mover->complete(); // before the staged copy is freed
        if (!failure.empty())
          return poison(call.describe(g.name) + ": " + failure + " (" + mover->describe() + ")");
      }
      return "";
    } else if (g.world->isFinished(g.worldRanks[peer])) {
      error = "gave up in " + call.describe(g.name) + ": rank " + std::to_string(peer) + " finished without sending" +
              waitingTags(g, peer, myRank);
    } else if (Clock::now() >= deadline) {
      error = "timed out after " + formatSeconds(g.world->options.timeout) + " in " + call.describe(g.name) +
              ": rank " + std::to_string(peer) + " never sent" + waitingTags(g, peer, myRank);
    }
    if (!error.empty()) {
      leave();
      lock.unlock();
      return poisons ? poison(error) : error;
    }
    if (!posted) {
      channel.posted = &post;
      posted = true;
    }
    g.cv.wait_until(lock, deadline);
  }
}

} // namespace

//===- ThreadWorld and runRanks ----------------------------------------------===//

ThreadWorld::ThreadWorld(int size, ThreadWorldOptions options, std::vector<std::shared_ptr<DataMover>> movers)
    : state(std::make_shared<detail::WorldState>(size, options)) {
  assert(size >= 1);
  assert(movers.empty() || int(movers.size()) == size);
  std::vector<int> ranks(size);
  std::iota(ranks.begin(), ranks.end(), 0);
  auto world = std::make_shared<GroupState>(state, "world", std::move(ranks), /*isWorld=*/true);
  state->add(world);
  for (int r = 0; r < size; ++r)
    communicators.push_back(
        std::make_unique<ThreadCommunicator>(world, r, movers.empty() ? hostDataMover() : movers[size_t(r)]));
}

ThreadWorld::~ThreadWorld() = default;

int ThreadWorld::size() const { return state->size; }

Communicator &ThreadWorld::communicator(int rank) { return *communicators.at(rank); }

void ThreadWorld::finished(int rank) { state->finish(rank); }

int ThreadWorld::failedRank() const { return state->failed() ? state->failure().worldRank : -1; }

std::string ThreadWorld::failureReason() const { return state->failed() ? state->failure().reason : ""; }

std::string runRanks(int n, const std::function<std::string(int rank, Communicator &world)> &body,
                     ThreadWorldOptions options, std::vector<std::shared_ptr<DataMover>> movers) {
  if (n < 1)
    return "runRanks: the number of ranks must be positive (got " + std::to_string(n) + ")";
  if (!movers.empty() && int(movers.size()) != n)
    return "runRanks: " + std::to_string(movers.size()) + " data movers for " + std::to_string(n) + " ranks";
  ThreadWorld world(n, options, std::move(movers));
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      std::string error;
      try {
        error = body(r, world.communicator(r));
      } catch (const std::exception &e) {
        error = std::string("threw an exception: ") + e.what();
      } catch (...) {
        error = "threw an exception that is not a std::exception";
      }
      if (!error.empty())
        world.communicator(r).abort(error); // a no-op when this is a consequence of an earlier failure
      errors[r] = std::move(error);
      world.finished(r);
    });
  for (std::thread &t : threads)
    t.join();

  // The root cause is the rank that failed the world first; its own error usually adds context to the reason.
  if (int origin = world.failedRank(); origin >= 0)
    return "rank " + std::to_string(origin) + ": " + (errors[origin].empty() ? world.failureReason() : errors[origin]);
  return "";
}

} // namespace megatron::comm
