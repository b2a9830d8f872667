//===- GroupTest.cpp - split() into groups, and point-to-point ------------===//

#include "runtime/comm/ThreadCommunicator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <numeric>
#include <thread>
#include <vector>

using namespace megatron::comm;

namespace {

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// 8 ranks as tp groups of 4 (consecutive ranks); each group runs its own number of all-reduces concurrently.
TEST(Split, TwoGroupsOfFourRunIndependently) {
  std::vector<std::vector<int32_t>> out(8);
  std::vector<std::string> names(8);
  std::vector<int> ranks(8), sizes(8);
  ASSERT_EQ(runRanks(8,
                     [&](int rank, Communicator &world) {
                       std::string error;
                       std::unique_ptr<Communicator> tp = world.split(rank / 4, rank, "tp", error);
                       if (!tp)
                         return "no group: " + error;
                       names[rank] = tp->name();
                       ranks[rank] = tp->rank();
                       sizes[rank] = tp->size();
                       out[rank] = {rank, 1};
                       for (int i = 0; i < (rank < 4 ? 3 : 5); ++i) // different call counts per group
                         if (std::string e = tp->allReduce(out[rank].data(), 2, DType::I32, ReduceOp::Sum); !e.empty())
                           return e;
                       return std::string();
                     }),
            "");
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(names[r], "tp");
    EXPECT_EQ(ranks[r], r % 4);
    EXPECT_EQ(sizes[r], 4);
  }
  // Group 0: 0+1+2+3 = 6, then x4 twice more; group 1: 4+5+6+7 = 22, then x4 four more times.
  EXPECT_EQ(out[0], (std::vector<int32_t>{6 * 16, 4 * 16}));
  EXPECT_EQ(out[7], (std::vector<int32_t>{22 * 256, 4 * 256}));
}

// Consecutive blocks of 2 ranks, e.g. the ranks that share a replicated KV head; then split again inside tp.
TEST(Split, BlocksOfTwoAndNestedSplits) {
  std::vector<std::vector<int32_t>> blocks(8), nested(8);
  ASSERT_EQ(runRanks(8,
                     [&](int rank, Communicator &world) {
                       std::string error;
                       auto kv = world.split(rank / 2, rank, "kv", error);
                       if (!kv)
                         return error;
                       int32_t mine = 10 * rank;
                       blocks[rank].assign(2, -1);
                       if (std::string e = kv->allGather(&mine, blocks[rank].data(), 1, DType::I32); !e.empty())
                         return e;
                       auto tp = world.split(rank / 4, rank, "tp", error);
                       auto kvInTp = tp ? tp->split(tp->rank() / 2, tp->rank(), "kv_in_tp", error) : nullptr;
                       if (!kvInTp)
                         return error;
                       nested[rank].assign(2, -1);
                       return kvInTp->allGather(&mine, nested[rank].data(), 1, DType::I32);
                     }),
            "");
  for (int r = 0; r < 8; ++r) {
    std::vector<int32_t> want = {10 * (r / 2 * 2), 10 * (r / 2 * 2 + 1)};
    EXPECT_EQ(blocks[r], want) << r;
    EXPECT_EQ(nested[r], want) << r;
  }
}

// Tensor- and data-parallel groups from the same world: reducing over tp, then over dp, sums over the world.
TEST(Split, TensorAndDataParallelGroupsCompose) {
  std::vector<std::vector<int32_t>> twoStep(8), direct(8);
  std::vector<int> dpRank(8);
  ASSERT_EQ(runRanks(8,
                     [&](int rank, Communicator &world) {
                       std::string error;
                       auto tp = world.split(rank / 4, rank, "tp", error);
                       auto dp = tp ? world.split(rank % 4, rank, "dp", error) : nullptr;
                       if (!dp)
                         return error;
                       dpRank[rank] = dp->rank();
                       twoStep[rank] = {rank * 3 + 1, rank * rank};
                       direct[rank] = twoStep[rank];
                       std::string e = tp->allReduce(twoStep[rank].data(), 2, DType::I32, ReduceOp::Sum);
                       if (e.empty())
                         e = dp->allReduce(twoStep[rank].data(), 2, DType::I32, ReduceOp::Sum);
                       if (e.empty())
                         e = world.allReduce(direct[rank].data(), 2, DType::I32, ReduceOp::Sum);
                       return e;
                     }),
            "");
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(dpRank[r], r / 4);
    EXPECT_EQ(twoStep[r], direct[r]);
    EXPECT_EQ(direct[r], (std::vector<int32_t>{3 * 28 + 8, 140}));
  }
}

TEST(Split, KeyOrdersTheNewRanksAndNegativeColorsStayOut) {
  std::vector<int> newRank(5, -2);
  std::vector<std::vector<int32_t>> gathered(5);
  ASSERT_EQ(runRanks(5,
                     [&](int rank, Communicator &world) {
                       std::string error;
                       // Ranks 0..3 form one group ordered by descending rank; rank 4 takes no part.
                       auto group = world.split(rank == 4 ? -1 : 0, -rank, "rev", error);
                       if (!error.empty())
                         return error;
                       if (!group)
                         return rank == 4 ? std::string() : std::string("missing group");
                       newRank[rank] = group->rank();
                       int32_t mine = rank;
                       gathered[rank].assign(4, -1);
                       return group->allGather(&mine, gathered[rank].data(), 1, DType::I32);
                     }),
            "");
  EXPECT_EQ(newRank, (std::vector<int>{3, 2, 1, 0, -2}));
  EXPECT_EQ(gathered[0], (std::vector<int32_t>{3, 2, 1, 0}));
}

TEST(Split, RanksOfOneColorMustAgreeOnTheName) {
  std::string error = runRanks(2, [](int rank, Communicator &world) {
    std::string e;
    auto group = world.split(0, rank, rank == 0 ? "tp" : "dp", e);
    return e;
  });
  EXPECT_NE(error.find("mismatched calls: ranks 0 and 1 called split (group \"world\") with color 0 but names \"tp\" "
                       "and \"dp\""),
            std::string::npos)
      << error;
}

//===- Point-to-point ----------------------------------------------------===//

TEST(SendRecv, EitherSideMayArriveFirst) {
  for (bool receiverFirst : {false, true}) {
    std::vector<float> got(3, 0.0f);
    ASSERT_EQ(runRanks(2,
                       [&](int rank, Communicator &world) {
                         if (rank == 0) {
                           if (receiverFirst)
                             sleepMs(30);
                           float data[3] = {1.5f, -2.0f, 3.25f};
                           return world.send(data, 3, DType::F32, 1, 0);
                         }
                         if (!receiverFirst)
                           sleepMs(30);
                         return world.recv(got.data(), 3, DType::F32, 0, 0);
                       }),
              "");
    EXPECT_EQ(got, (std::vector<float>{1.5f, -2.0f, 3.25f})) << receiverFirst;
  }
}

// Every rank sends to its successor before receiving from its predecessor: a synchronous send would deadlock.
TEST(SendRecv, Ring) {
  const int n = 5;
  std::vector<std::vector<double>> got(n);
  ASSERT_EQ(runRanks(n,
                     [&](int rank, Communicator &world) {
                       for (int round = 0; round < 10; ++round) {
                         std::vector<double> data(100, rank * 1000.0 + round), in(100, -1.0);
                         if (std::string e = world.send(data.data(), 100, DType::F64, (rank + 1) % n, 0); !e.empty())
                           return e;
                         if (std::string e = world.recv(in.data(), 100, DType::F64, (rank + n - 1) % n, 0); !e.empty())
                           return e;
                         got[rank].push_back(in[99]);
                       }
                       return std::string();
                     }),
            "");
  for (int r = 0; r < n; ++r)
    for (int round = 0; round < 10; ++round)
      EXPECT_EQ(got[r][round], ((r + n - 1) % n) * 1000.0 + round);
}

// Rank 0 has five sends in flight to two peers before either receives; each peer gets its messages in order.
TEST(SendRecv, SeveralSendsInFlightArriveInOrder) {
  std::vector<std::vector<int32_t>> got(3);
  ASSERT_EQ(runRanks(3,
                     [&](int rank, Communicator &world) {
                       if (rank == 0) {
                         for (int32_t m = 0; m < 5; ++m) {
                           int32_t message[2] = {m, m * m};
                           if (std::string e = world.send(message, 2, DType::I32, m % 2 ? 2 : 1, 0); !e.empty())
                             return e;
                         }
                         return std::string();
                       }
                       sleepMs(20);
                       for (int m = 0; m < (rank == 1 ? 3 : 2); ++m) {
                         int32_t message[2] = {-1, -1};
                         if (std::string e = world.recv(message, 2, DType::I32, 0, 0); !e.empty())
                           return e;
                         got[rank].push_back(message[0]);
                         got[rank].push_back(message[1]);
                       }
                       return std::string();
                     }),
            "");
  EXPECT_EQ(got[1], (std::vector<int32_t>{0, 0, 2, 4, 4, 16}));
  EXPECT_EQ(got[2], (std::vector<int32_t>{1, 1, 3, 9}));
}

// Pipeline groups from a split: point-to-point uses the group's ranks; empty messages and sends to self work.
TEST(SendRecv, WithinAGroupEmptyAndToSelf) {
  std::vector<int64_t> got(4, -1);
  ASSERT_EQ(runRanks(4,
                     [&](int rank, Communicator &world) {
                       std::string error;
                       auto pp = world.split(rank % 2, rank, "pp", error); // {0, 2} and {1, 3}
                       if (!pp)
                         return error;
                       int64_t value = 100 + rank;
                       if (std::string e = pp->send(&value, 1, DType::I64, 1 - pp->rank(), 0); !e.empty())
                         return e;
                       if (std::string e = pp->send(nullptr, 0, DType::I64, 1 - pp->rank(), 0); !e.empty())
                         return e;
                       if (std::string e = pp->recv(&got[rank], 1, DType::I64, 1 - pp->rank(), 0); !e.empty())
                         return e;
                       if (std::string e = pp->recv(nullptr, 0, DType::I64, 1 - pp->rank(), 0); !e.empty())
                         return e;
                       int64_t self = 7, back = 0;
                       std::string e = pp->send(&self, 1, DType::I64, pp->rank(), 0);
                       if (e.empty())
                         e = pp->recv(&back, 1, DType::I64, pp->rank(), 0);
                       return e.empty() && back != 7 ? std::string("self message lost") : e;
                     }),
            "");
  EXPECT_EQ(got, (std::vector<int64_t>{102, 103, 100, 101}));
}

//===- Tags --------------------------------------------------------------===//

// Rank 0 sends tags 1, 2, 3 (of different sizes), rank 1 receives 3, 1, 2: each receive gets the message of its tag,
// whether the messages are all waiting (sender first) or the receive of tag 3 is posted first and the messages of
// tags 1 and 2 arrive while it waits.
TEST(SendRecvTags, OutOfOrderTagsBetweenOnePair) {
  for (bool receiverFirst : {false, true}) {
    std::vector<std::vector<float>> got(4);
    ASSERT_EQ(runRanks(2,
                       [&](int rank, Communicator &world) {
                         if (rank == 0) {
                           if (receiverFirst)
                             sleepMs(30);
                           for (int tag : {1, 2, 3}) {
                             std::vector<float> message(tag + 1, 10.0f * tag);
                             message[0] = float(tag);
                             if (std::string e = world.send(message.data(), tag + 1, DType::F32, 1, tag); !e.empty())
                               return e;
                           }
                           return std::string();
                         }
                         if (!receiverFirst)
                           sleepMs(30);
                         for (int tag : {3, 1, 2}) {
                           got[tag].assign(tag + 1, -1.0f);
                           if (std::string e = world.recv(got[tag].data(), tag + 1, DType::F32, 0, tag); !e.empty())
                             return e;
                         }
                         return std::string();
                       }),
              "")
        << receiverFirst;
    for (int tag : {1, 2, 3}) {
      std::vector<float> want(tag + 1, 10.0f * tag);
      want[0] = float(tag);
      EXPECT_EQ(got[tag], want) << "tag " << tag << ", receiver first: " << receiverFirst;
    }
  }
}

// Messages of one tag keep their order however they interleave with other tags: rank 0 sends 60 messages with
// tags cycling through 0, 5, 9, kMaxTag (and gaps), rank 1 receives them by tag in a scrambled order of tags.
TEST(SendRecvTags, FifoWithinATag) {
  const int tags[] = {0, 5, 9, kMaxTag};
  const int messages = 60;
  std::vector<int> sentTag(messages);
  for (int m = 0; m < messages; ++m)
    sentTag[m] = tags[(m * 7 + m / 5) % 4];
  // Rank 1 asks for the tags in another order: the sequence of tags reversed (same number per tag).
  std::vector<int> askTag(sentTag.rbegin(), sentTag.rend());
  for (bool receiverFirst : {false, true}) {
    std::vector<std::pair<int32_t, int32_t>> got; // (tag, sequence number)
    ASSERT_EQ(runRanks(2,
                       [&](int rank, Communicator &world) {
                         if (rank == 0) {
                           if (receiverFirst)
                             sleepMs(20);
                           std::vector<int32_t> sequence(4, 0);
                           for (int m = 0; m < messages; ++m) {
                             int k = int(std::find(std::begin(tags), std::end(tags), sentTag[m]) - std::begin(tags));
                             int32_t message[2] = {sentTag[m], sequence[k]++};
                             if (std::string e = world.send(message, 2, DType::I32, 1, sentTag[m]); !e.empty())
                               return e;
                           }
                           return std::string();
                         }
                         for (int m = 0; m < messages; ++m) {
                           int32_t message[2] = {-1, -1};
                           if (std::string e = world.recv(message, 2, DType::I32, 0, askTag[m]); !e.empty())
                             return e;
                           got.push_back({message[0], message[1]});
                         }
                         return std::string();
                       }),
              "")
        << receiverFirst;
    ASSERT_EQ(int(got.size()), messages);
    std::vector<int32_t> next(4, 0);
    for (int m = 0; m < messages; ++m) {
      int k = int(std::find(std::begin(tags), std::end(tags), askTag[m]) - std::begin(tags));
      EXPECT_EQ(got[m].first, askTag[m]) << "receive " << m;
      EXPECT_EQ(got[m].second, next[k]++) << "receive " << m << " of tag " << askTag[m];
    }
  }
}

// A pipeline of 4 stages in a "pp" group: activations flow forward and gradients backward, several micro-batches
// in flight, each message tagged with its micro-batch and direction. Odd stages take the micro-batches in reverse
// order, even ones in order, so every receive asks for a message that is not the oldest from its peer.
TEST(SendRecvTags, PipelineStagesTakeMicroBatchesInTheirOwnOrder) {
  const int stages = 4, microBatches = 5;
  auto forwardTag = [](int mb) { return 2 * mb; };
  auto backwardTag = [](int mb) { return 2 * mb + 1; };
  std::vector<std::vector<double>> outputs(microBatches), gradients(microBatches);
  ASSERT_EQ(runRanks(stages,
                     [&](int rank, Communicator &world) {
                       std::string error;
                       auto pp = world.split(0, rank, "pp", error);
                       if (!pp)
                         return error;
                       std::vector<int> order(microBatches);
                       std::iota(order.begin(), order.end(), 0);
                       if (rank % 2 == 1)
                         std::reverse(order.begin(), order.end());
                       for (int mb : order) { // forward
                         double activation[3] = {double(mb), 0.0, 0.0};
                         if (rank > 0)
                           if (std::string e = pp->recv(activation, 3, DType::F64, rank - 1, forwardTag(mb));
                               !e.empty())
                             return e;
                         activation[1] += 1.0; // this stage's "layer"
                         activation[2] = activation[2] * 10 + rank;
                         if (rank == stages - 1)
                           outputs[mb].assign(activation, activation + 3);
                         else if (std::string e = pp->send(activation, 3, DType::F64, rank + 1, forwardTag(mb));
                                  !e.empty())
                           return e;
                       }
                       for (int mb : order) { // backward
                         double gradient[2] = {double(mb), 0.0};
                         if (rank < stages - 1)
                           if (std::string e = pp->recv(gradient, 2, DType::F64, rank + 1, backwardTag(mb));
                               !e.empty())
                             return e;
                         gradient[1] = gradient[1] * 10 + rank;
                         if (rank == 0)
                           gradients[mb].assign(gradient, gradient + 2);
                         else if (std::string e = pp->send(gradient, 2, DType::F64, rank - 1, backwardTag(mb));
                                  !e.empty())
                           return e;
                       }
                       return std::string();
                     }),
            "");
  for (int mb = 0; mb < microBatches; ++mb) {
    EXPECT_EQ(outputs[mb], (std::vector<double>{double(mb), 4.0, 123.0})) << mb;
    EXPECT_EQ(gradients[mb], (std::vector<double>{double(mb), 3210.0})) << mb;
  }
}

// Transitional: the overloads without a tag (for callers written before tags) use tag 0. Remove with them.
} // namespace
