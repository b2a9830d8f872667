//===- InOrderP2PCommunicator.cpp - NCCL's point-to-point semantics, strictly ---===//

#include "InOrderP2PCommunicator.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace megatron::test {

namespace {

using comm::CallInfo;
using comm::CommOp;
using comm::DType;

/// One send or recv, from its posting until it has matched its peer's.
struct Op {
  bool send = false;
  int from = 0, to = 0; // ranks of the group
  int tag = 0;
  int64_t count = 0;
  DType type = DType::F32;
  int worldRank = 0; // of the rank that posted it
  std::string what;  // "send to rank 1 tag 3 (group "pp", 10 x f32)"
  bool matched = false;
};

/// The unmatched calls of one (sender, receiver) pair, each way in issue order.
struct Channel {
  std::deque<std::shared_ptr<Op>> sends, recvs;
};

/// One group of ranks, shared by its members' communicators.
struct GroupState {
  std::map<std::pair<int, int>, Channel> channels; // by (sender, receiver)
};

} // namespace

struct InOrderP2PWorld::State {
  State(int ranks, std::chrono::milliseconds timeout)
      : timeout(timeout), waitingIn(size_t(ranks)), ready(size_t(ranks)) {}

  const std::chrono::milliseconds timeout;
  std::mutex mutex;
  std::condition_variable changed;
  std::string failed;                          // the first failure
  std::vector<std::string> waitingIn;          // per world rank: the call it waits in, while it does
  std::vector<std::function<bool()>> ready;    // per world rank, while it waits: whether it may go on
  std::shared_ptr<GroupState> world = std::make_shared<GroupState>();
  /// The groups split off a group, by (parent, the parent's split number, color): every rank of the parent splits
  /// in the same order.
  std::map<std::tuple<const GroupState *, int, int>, std::shared_ptr<GroupState>> splits;

  /// Under `mutex`: records the first failure and wakes every waiting rank; returns the failure.
  std::string failLocked(const std::string &reason) {
    if (failed.empty())
      failed = reason;
    changed.notify_all();
    return failed;
  }

  /// Under `lock`: whether every rank waits and none can go on, and if so the deadlock's description.
  std::string deadlockLocked() const {
    for (size_t r = 0; r < ready.size(); ++r)
      if (!ready[r] || ready[r]())
        return {};
    return describeWaiting("");
  }

  std::string describeWaiting(const std::string &suffix) const {
    std::string text = "deadlock: ";
    bool first = true;
    for (size_t r = 0; r < ready.size(); ++r)
      if (ready[r]) {
        text += (first ? "" : "; ") + std::string("rank ") + std::to_string(r) + " waits in " + waitingIn[r];
        first = false;
      }
    return text + suffix;
  }
};

namespace {

class InOrderP2PCommunicator final : public comm::Communicator {
public:
  using State = InOrderP2PWorld::State;

  InOrderP2PCommunicator(std::shared_ptr<State> state, std::shared_ptr<GroupState> group, comm::Communicator &inner,
                         std::unique_ptr<comm::Communicator> owned, int worldRank)
      : state(std::move(state)), group(std::move(group)), inner(inner), owned(std::move(owned)),
        worldRank(worldRank) {}

  int rank() const override { return inner.rank(); }
  int size() const override { return inner.size(); }
  const std::string &name() const override { return inner.name(); }

  std::string allReduce(void *data, int64_t count, DType type, comm::ReduceOp op) override {
    return inner.allReduce(data, count, type, op);
  }
  std::string allGather(const void *send, void *recv, int64_t countPerRank, DType type) override {
    return inner.allGather(send, recv, countPerRank, type);
  }
  std::string reduceScatter(const void *send, void *recv, int64_t countPerRank, DType type,
                            comm::ReduceOp op) override {
    return inner.reduceScatter(send, recv, countPerRank, type, op);
  }
  std::string broadcast(void *data, int64_t count, DType type, int root) override {
    return inner.broadcast(data, count, type, root);
  }
  std::string allGatherDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type) override {
    return inner.allGatherDim(send, recv, outer, chunk, type);
  }
  std::string reduceScatterDim(const void *send, void *recv, int64_t outer, int64_t chunk, DType type,
                               comm::ReduceOp op) override {
    return inner.reduceScatterDim(send, recv, outer, chunk, type, op);
  }

  std::string send(const void *data, int64_t count, DType type, int peer, int tag) override {
    // The bytes leave through the wrapped (tagged, non-blocking) send when the call is posted: the receiver takes
    // them once the call has matched its recv.
    if (std::string error = inner.send(data, count, type, peer, tag); !error.empty())
      return error;
    std::shared_ptr<Op> op = makeOp(true, count, type, peer, tag);
    if (std::string error = post(op); !error.empty())
      return error;
    if (inGroup) {
      posted.push_back({op, nullptr});
      return {};
    }
    return wait(op->what, [op] { return op->matched; });
  }

  std::string recv(void *data, int64_t count, DType type, int peer, int tag) override {
    std::shared_ptr<Op> op = makeOp(false, count, type, peer, tag);
    if (std::string error = post(op); !error.empty())
      return error;
    if (inGroup) {
      posted.push_back({op, data});
      return {};
    }
    if (std::string error = wait(op->what, [op] { return op->matched; }); !error.empty())
      return error;
    return inner.recv(data, count, type, peer, tag);
  }

  std::string groupStart() override {
    if (inGroup)
      return where() + ": groupStart inside a group (groups do not nest)";
    inGroup = true;
    posted.clear();
    return {};
  }

  std::string groupEnd() override {
    if (!inGroup)
      return where() + ": groupEnd without groupStart";
    inGroup = false;
    std::vector<Posted> group = std::move(posted);
    posted.clear();
    if (group.empty())
      return {};
    std::string what = "a group of " + std::to_string(group.size()) + " calls (";
    for (size_t i = 0; i < group.size(); ++i)
      what += (i ? ", " : "") + group[i].op->what;
    what += ")";
    if (std::string error = wait(what,
                                 [group] {
                                   for (const Posted &p : group)
                                     if (!p.op->matched)
                                       return false;
                                   return true;
                                 });
        !error.empty())
      return error;
    for (const Posted &p : group)
      if (!p.op->send)
        if (std::string error = inner.recv(p.data, p.op->count, p.op->type, p.op->from, p.op->tag); !error.empty())
          return error;
    return {};
  }

  std::unique_ptr<comm::Communicator> split(int color, int key, const std::string &newName,
                                            std::string &error) override {
    const int sequence = splits++;
    std::unique_ptr<comm::Communicator> child = inner.split(color, key, newName, error);
    if (!child)
      return nullptr;
    std::shared_ptr<GroupState> childGroup;
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      std::shared_ptr<GroupState> &slot = state->splits[{group.get(), sequence, color}];
      if (!slot)
        slot = std::make_shared<GroupState>();
      childGroup = slot;
    }
    comm::Communicator &childRef = *child;
    return std::make_unique<InOrderP2PCommunicator>(state, std::move(childGroup), childRef, std::move(child),
                                                    worldRank);
  }

  void abort(const std::string &reason) override {
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->failLocked("rank " + std::to_string(worldRank) + " of group \"" + name() + "\" failed: " + reason);
    }
    inner.abort(reason);
  }

private:
  struct Posted {
    std::shared_ptr<Op> op;
    void *data; // a recv's destination
  };

  std::string where() const { return "group \"" + name() + "\" on rank " + std::to_string(rank()); }

  std::shared_ptr<Op> makeOp(bool isSend, int64_t count, DType type, int peer, int tag) const {
    auto op = std::make_shared<Op>();
    op->send = isSend;
    op->from = isSend ? rank() : peer;
    op->to = isSend ? peer : rank();
    op->tag = tag;
    op->count = count;
    op->type = type;
    op->worldRank = worldRank;
    CallInfo call;
    call.op = isSend ? CommOp::Send : CommOp::Recv;
    call.type = type;
    call.count = count;
    call.peer = peer;
    call.tag = tag;
    op->what = call.describe(name());
    return op;
  }

  /// Queues `op` on its pair's channel and matches the pair's oldest sends and recvs, in order.
  std::string post(const std::shared_ptr<Op> &op) {
    std::string failure;
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      if (!state->failed.empty())
        return op->what + " on rank " + std::to_string(worldRank) + ": " + state->failed;
      Channel &channel = group->channels[{op->from, op->to}];
      (op->send ? channel.sends : channel.recvs).push_back(op);
      while (failure.empty() && !channel.sends.empty() && !channel.recvs.empty()) {
        std::shared_ptr<Op> s = channel.sends.front(), r = channel.recvs.front();
        channel.sends.pop_front();
        channel.recvs.pop_front();
        if (s->tag != r->tag || s->count != r->count || s->type != r->type)
          failure = state->failLocked("mismatch: rank " + std::to_string(r->worldRank) + "'s " + r->what +
                                      " matched rank " + std::to_string(s->worldRank) + "'s " + s->what +
                                      " (a pair's messages match in issue order, without tags)");
        s->matched = r->matched = true;
      }
      state->changed.notify_all();
    }
    if (failure.empty())
      return {};
    inner.abort(failure);
    return failure;
  }

  /// Waits until `ready`, bounded (see the header).
  std::string wait(const std::string &what, std::function<bool()> ready) {
    std::string failure;
    bool detected = false;
    {
      std::unique_lock<std::mutex> lock(state->mutex);
      const auto deadline = std::chrono::steady_clock::now() + state->timeout;
      const size_t me = size_t(worldRank);
      state->waitingIn[me] = what;
      state->ready[me] = ready;
      for (;;) {
        if (!state->failed.empty()) {
          failure = state->failed;
          break;
        }
        if (ready())
          break;
        if (std::string deadlock = state->deadlockLocked(); !deadlock.empty()) {
          failure = state->failLocked(deadlock);
          detected = true;
          break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          failure = state->failLocked(state->describeWaiting(
              " (rank " + std::to_string(worldRank) + " waited " +
              std::to_string(state->timeout.count()) + " ms)"));
          detected = true;
          break;
        }
        state->changed.wait_until(lock, deadline);
      }
      state->ready[me] = nullptr;
      state->waitingIn[me].clear();
    }
    if (failure.empty())
      return {};
    if (detected)
      inner.abort(failure);
    return what + " on rank " + std::to_string(worldRank) + ": " + failure;
  }

  std::shared_ptr<State> state;
  std::shared_ptr<GroupState> group;
  comm::Communicator &inner;
  std::unique_ptr<comm::Communicator> owned; // `inner`, for a split's communicator
  const int worldRank;
  int splits = 0;
  bool inGroup = false;
  std::vector<Posted> posted; // this rank's calls of its open group
};

} // namespace

InOrderP2PWorld::InOrderP2PWorld(int ranks, std::chrono::milliseconds timeout)
    : state(std::make_shared<State>(ranks, timeout)) {}

InOrderP2PWorld::~InOrderP2PWorld() = default;

std::unique_ptr<comm::Communicator> InOrderP2PWorld::wrap(comm::Communicator &inner, int rank) {
  return std::make_unique<InOrderP2PCommunicator>(state, state->world, inner, nullptr, rank);
}

std::string InOrderP2PWorld::failure() const {
  std::lock_guard<std::mutex> lock(state->mutex);
  return state->failed;
}

} // namespace megatron::test
