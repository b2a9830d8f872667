//===- FailureTest.cpp - Aborts, timeouts and mismatched calls never hang --===//
//
// The waits in these tests are bounded by generous timeouts (10 s) unless the timeout itself is tested, so a
// prompt return proves that the failure, not the timeout, ended the wait.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace megatron::comm;
using Clock = std::chrono::steady_clock;

namespace {

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

ThreadWorldOptions timeout(int ms) {
  ThreadWorldOptions options;
  options.timeout = std::chrono::milliseconds(ms);
  return options;
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// A rank blocked in `call` when `failure` happened reports "while rank R waited in"; on a loaded machine it may
// have arrived only after the failure, and then reports "before rank R called".
void expectSecondary(const std::string &error, const std::string &failure, int rank, const std::string &call) {
  const std::string r = std::to_string(rank);
  EXPECT_TRUE(error == failure + " while rank " + r + " waited in " + call ||
              error == failure + " before rank " + r + " called " + call)
      << error;
}

// Rank 2 fails while the others wait in an all-reduce: they return at once, naming rank 2, its reason and their
// own call; runRanks reports rank 2's error, not theirs.
TEST(Failure, AbortReleasesRanksBlockedInACollective) {
  std::vector<std::string> errors(4);
  std::vector<double> waited(4, 0.0);
  std::string error = runRanks(
      4,
      [&](int rank, Communicator &world) {
        if (rank == 2) {
          sleepMs(50); // let the others block first
          return std::string("loss is NaN");
        }
        std::vector<float> data(4096, 1.0f);
        Clock::time_point start = Clock::now();
        errors[rank] = world.allReduce(data.data(), 4096, DType::F32, ReduceOp::Sum);
        waited[rank] = secondsSince(start);
        return errors[rank];
      },
      timeout(10'000));
  EXPECT_EQ(error, "rank 2: loss is NaN");
  for (int r : {0, 1, 3}) {
    EXPECT_LT(waited[r], 2.0);
    expectSecondary(errors[r], "rank 2 of group \"world\" failed (loss is NaN)", r,
                    "all_reduce (group \"world\", 4096 x f32, sum)");
  }
}

// A failure in one group releases ranks waiting in another group of the same world, and every later call of any
// group fails at once.
TEST(Failure, AbortPoisonsEveryGroupOfTheWorld) {
  std::vector<std::string> first(4), later(4);
  std::string error = runRanks(
      4,
      [&](int rank, Communicator &world) {
        std::string e;
        auto tp = world.split(rank / 2, rank, "tp", e);
        auto dp = tp ? world.split(rank % 2, rank, "dp", e) : nullptr;
        if (!dp)
          return e;
        if (rank == 3) {
          sleepMs(30);
          tp->abort("out of memory");
          return std::string("out of memory");
        }
        int32_t x = 1;
        first[rank] = rank == 2 ? tp->allReduce(&x, 1, DType::I32, ReduceOp::Sum)
                                : dp->allReduce(&x, 1, DType::I32, ReduceOp::Sum);
        Clock::time_point start = Clock::now();
        later[rank] = world.broadcast(&x, 1, DType::I32, 0);
        if (secondsSince(start) > 0.5)
          return std::string("a call on a failed world waited");
        return first[rank];
      },
      timeout(10'000));
  EXPECT_EQ(error, "rank 3: out of memory");
  // World rank 2 is rank 0 of tp {2, 3}; world ranks 0 and 1 wait in dp {0, 2} and {1, 3} for ranks that never come.
  const std::string failure = "rank 1 of group \"tp\" (world rank 3) failed (out of memory)";
  expectSecondary(first[2], failure, 0, "all_reduce (group \"tp\", 1 x i32, sum)");
  for (int r : {0, 1})
    expectSecondary(first[r], failure, 0, "all_reduce (group \"dp\", 1 x i32, sum)");
  EXPECT_EQ(later[0], "rank 1 of group \"tp\" (world rank 3) failed (out of memory) before rank 0 called broadcast "
                      "(group \"world\", 1 x i32, root 0)");
}

// abort() from another thread (a watchdog) releases a rank blocked in recv.
TEST(Failure, AbortFromAnotherThread) {
  ThreadWorld world(2, timeout(10'000));
  std::string error;
  Clock::time_point start = Clock::now();
  std::thread receiver([&] {
    float x;
    error = world.communicator(0).recv(&x, 1, DType::F32, 1, 0);
  });
  sleepMs(30);
  world.communicator(1).abort("watchdog: step took too long");
  receiver.join();
  EXPECT_LT(secondsSince(start), 2.0);
  expectSecondary(error, "rank 1 of group \"world\" failed (watchdog: step took too long)", 0,
                  "recv from rank 1 (group \"world\", 1 x f32)");
  EXPECT_EQ(world.failedRank(), 1);
}

// Ranks 1 and 3 never call: ranks 0 and 2 time out, and the message names the missing ranks.
TEST(Failure, TimeoutNamesTheRanksThatNeverArrived) {
  ThreadWorld world(4, timeout(200));
  std::vector<std::string> errors(4);
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int r : {0, 2})
    threads.emplace_back([&, r] {
      float send[8] = {}, recv[32];
      errors[r] = world.communicator(r).allGather(send, recv, 8, DType::F32);
    });
  for (std::thread &t : threads)
    t.join();
  double elapsed = secondsSince(start);
  EXPECT_GE(elapsed, 0.2);
  EXPECT_LT(elapsed, 2.0);
  EXPECT_EQ(world.failureReason(),
            "timed out after 0.2 s in all_gather (group \"world\", 8 x f32 per rank): ranks 1, 3 never arrived");
  EXPECT_CONTAINS(errors[0] + errors[2], "never arrived");
  EXPECT_FALSE(errors[0].empty() || errors[2].empty());
  // The world stays failed: a late arrival gets the error at once.
  float send[8] = {}, recv[32];
  EXPECT_CONTAINS(world.communicator(1).allGather(send, recv, 8, DType::F32), "before rank 1 called all_gather");
}

TEST(Failure, RecvTimesOut) {
  std::string error = runRanks(
      2,
      [](int rank, Communicator &world) {
        double x = 0;
        if (rank == 0)
          return world.recv(&x, 1, DType::F64, 1, 0);
        // Rank 1 waits in an unrelated recv instead of sending: both time out.
        return world.recv(&x, 1, DType::F64, 0, 0);
      },
      timeout(100));
  EXPECT_CONTAINS(error, "timed out after 0.1 s in recv from rank ");
  EXPECT_CONTAINS(error, " never sent");
}

// A rank whose body returned can never arrive: its peers fail at once instead of at the timeout.
TEST(Failure, RankThatFinishedWithoutCalling) {
  Clock::time_point start = Clock::now();
  std::string error = runRanks(
      3,
      [](int rank, Communicator &world) {
        if (rank == 1)
          return std::string();
        double x = rank;
        return world.allReduce(&x, 1, DType::F64, ReduceOp::Max);
      },
      timeout(10'000));
  EXPECT_LT(secondsSince(start), 2.0);
  EXPECT_CONTAINS(error, "gave up in all_reduce (group \"world\", 1 x f64, max): rank 1 finished without calling it");
}

TEST(Failure, MismatchedCollectivesAreDetectedBeforeTouchingMemory) {
  struct Case {
    const char *name;
    std::function<std::string(int rank, Communicator &world, float *buffer)> call;
    const char *expected;
  };
  const Case cases[] = {
      {"different ops",
       [](int rank, Communicator &world, float *buffer) {
         return rank == 0 ? world.allReduce(buffer, 4, DType::F32, ReduceOp::Sum)
                          : world.allGather(buffer, buffer + 8, 4, DType::F32);
       },
       "mismatched calls: rank 0 called all_reduce (group \"world\", 4 x f32, sum), rank 1 called all_gather "
       "(group \"world\", 4 x f32 per rank)"},
      {"different counts",
       [](int rank, Communicator &world, float *buffer) {
         return world.allReduce(buffer, rank == 0 ? 4 : 8, DType::F32, ReduceOp::Sum);
       },
       "mismatched calls: rank 0 called all_reduce (group \"world\", 4 x f32, sum), rank 1 called all_reduce "
       "(group \"world\", 8 x f32, sum)"},
      {"different types",
       [](int rank, Communicator &world, float *buffer) {
         return world.allReduce(buffer, 4, rank == 0 ? DType::F32 : DType::I32, ReduceOp::Sum);
       },
       "rank 1 called all_reduce (group \"world\", 4 x i32, sum)"},
      {"different reductions",
       [](int rank, Communicator &world, float *buffer) {
         return world.allReduce(buffer, 4, DType::F32, rank == 0 ? ReduceOp::Sum : ReduceOp::Max);
       },
       "rank 1 called all_reduce (group \"world\", 4 x f32, max)"},
      {"different roots",
       [](int rank, Communicator &world, float *buffer) { return world.broadcast(buffer, 4, DType::F32, rank); },
       "rank 0 called broadcast (group \"world\", 4 x f32, root 0), rank 1 called broadcast (group \"world\", 4 x "
       "f32, root 1)"},
      {"send and recv sizes",
       [](int rank, Communicator &world, float *buffer) {
         return rank == 0 ? world.send(buffer, 4, DType::F32, 1, 0) : world.recv(buffer, 3, DType::F32, 0, 0);
       },
       "mismatched calls: rank 0 called send to rank 1 (group \"world\", 4 x f32), rank 1 called recv from rank 0 "
       "(group \"world\", 3 x f32)"},
  };
  for (const Case &c : cases) {
    std::vector<std::vector<float>> buffers(2, std::vector<float>(16, 0.0f));
    buffers[0].assign(16, 1.0f);
    std::string error = runRanks(
        2, [&](int rank, Communicator &world) { return c.call(rank, world, buffers[rank].data()); }, timeout(10'000));
    EXPECT_CONTAINS(error, c.expected);
    if (std::string(c.name) != "send and recv sizes") { // the sender's message is copied before the check
      EXPECT_EQ(buffers[1], std::vector<float>(16, 0.0f)) << c.name;
    }
  }
}

TEST(Failure, BadArgumentsFailTheWorld) {
  std::string error = runRanks(
      2,
      [](int rank, Communicator &world) {
        float x = 0;
        return world.broadcast(&x, rank == 1 ? -1 : 1, DType::F32, 0);
      },
      timeout(10'000));
  EXPECT_CONTAINS(error, "rank 1: broadcast (group \"world\", -1 x f32, root 0): negative element count");
  error = runRanks(
      2, [](int rank, Communicator &world) { return rank == 0 ? world.send(nullptr, 0, DType::F32, 2, 0) : ""; },
      timeout(10'000));
  EXPECT_EQ(error, "rank 0: send to rank 2 (group \"world\", 0 x f32): peer 2 is not a rank of this group of 2");
}

//===- Tags --------------------------------------------------------------===//

// The message of the tag asked for must match the receive's count and type; messages of other tags do not
// matter. Found before the receiver's buffer is touched, whichever side arrives first.
TEST(FailureTags, MismatchWithinATag) {
  struct Case {
    const char *name;
    int64_t count;
    DType type;
    const char *expected;
  };
  const Case cases[] = {
      {"count", 4, DType::F32,
       "mismatched calls: rank 0 called send to rank 1 tag 7 (group \"world\", 3 x f32), rank 1 called recv from "
       "rank 0 tag 7 (group \"world\", 4 x f32)"},
      {"type", 3, DType::I32,
       "mismatched calls: rank 0 called send to rank 1 tag 7 (group \"world\", 3 x f32), rank 1 called recv from "
       "rank 0 tag 7 (group \"world\", 3 x i32)"},
  };
  for (const Case &c : cases)
    for (bool receiverFirst : {false, true}) {
      std::vector<float> got(8, 0.0f);
      std::string error = runRanks(
          2,
          [&](int rank, Communicator &world) {
            if (rank == 0) {
              if (receiverFirst)
                sleepMs(30);
              float four[4] = {1, 2, 3, 4}, three[3] = {5, 6, 7};
              std::string e = world.send(four, 4, DType::F32, 1, 2); // matches the receive's count, other tag
              return e.empty() ? world.send(three, 3, DType::F32, 1, 7) : e;
            }
            if (!receiverFirst)
              sleepMs(30);
            return world.recv(got.data(), c.count, c.type, 0, 7);
          },
          timeout(10'000));
      EXPECT_CONTAINS(error, c.expected);
      EXPECT_EQ(got, std::vector<float>(8, 0.0f)) << c.name << ", receiver first: " << receiverFirst;
    }
}

TEST(FailureTags, TagsOutsideTheRangeAreBadArguments) {
  float x = 0;
  std::string error = runRanks(
      2, [&](int rank, Communicator &world) { return rank == 0 ? world.send(&x, 1, DType::F32, 1, -1) : ""; },
      timeout(10'000));
  EXPECT_EQ(error, "rank 0: send to rank 1 tag -1 (group \"world\", 1 x f32): tag -1 is outside 0..16777215");
  error = runRanks(
      2,
      [&](int rank, Communicator &world) { return rank == 1 ? world.recv(&x, 1, DType::F32, 0, kMaxTag + 1) : ""; },
      timeout(10'000));
  EXPECT_EQ(error, "rank 1: recv from rank 0 tag 16777216 (group \"world\", 1 x f32): tag 16777216 is outside "
                   "0..16777215");
  // The largest tag is fine.
  EXPECT_EQ(runRanks(2,
                     [&](int rank, Communicator &world) {
                       float y = 3;
                       return rank == 0 ? world.send(&y, 1, DType::F32, 1, kMaxTag)
                                        : world.recv(&x, 1, DType::F32, 0, kMaxTag);
                     }),
            "");
  EXPECT_EQ(x, 3.0f);
}

// A receive for a tag that never comes names the tags that wait instead: the typical schedule bug.
TEST(FailureTags, WaitingForATagThatNeverComesNamesTheTagsThatWait) {
  {
    ThreadWorld world(2, timeout(100));
    float x = 1;
    ASSERT_EQ(world.communicator(0).send(&x, 1, DType::F32, 1, 2), "");
    ASSERT_EQ(world.communicator(0).send(&x, 1, DType::F32, 1, 1), "");
    ASSERT_EQ(world.communicator(0).send(&x, 1, DType::F32, 1, 2), "");
    EXPECT_EQ(world.communicator(1).recv(&x, 1, DType::F32, 0, 3),
              "timed out after 0.1 s in recv from rank 0 tag 3 (group \"world\", 1 x f32): rank 0 never sent (its "
              "messages with tags 1, 2 wait unreceived)");
  }
  // The sender finished instead: the receiver gives up at once.
  Clock::time_point start = Clock::now();
  std::string error = runRanks(
      2,
      [](int rank, Communicator &world) {
        float x = 1;
        return rank == 0 ? world.send(&x, 1, DType::F32, 1, 0) : world.recv(&x, 1, DType::F32, 0, 9);
      },
      timeout(10'000));
  EXPECT_LT(secondsSince(start), 2.0);
  EXPECT_EQ(error, "rank 1: gave up in recv from rank 0 tag 9 (group \"world\", 1 x f32): rank 0 finished without "
                   "sending (its messages with tag 0 wait unreceived)");
}

// runRanks turns exceptions into errors naming the rank, and reports the first failure, not its consequences.
TEST(Failure, RunRanksReportsTheRootCause) {
  std::string error = runRanks(
      4,
      [](int rank, Communicator &world) -> std::string {
        if (rank == 1) {
          sleepMs(20);
          throw std::runtime_error("checkpoint directory vanished");
        }
        float x = 0;
        return world.allReduce(&x, 1, DType::F32, ReduceOp::Sum);
      },
      timeout(10'000));
  EXPECT_EQ(error, "rank 1: threw an exception: checkpoint directory vanished");

  // The rank that timed out is the root cause; the error its body returned (with its context) is reported.
  error = runRanks(
      3,
      [](int rank, Communicator &world) {
        float x = 0;
        if (rank == 2) { // waits in recv, later, so that the all-reduce of ranks 0 and 1 times out first
          sleepMs(150);
          std::string e = world.recv(&x, 1, DType::F32, 0, 0);
          return e.empty() ? e : "step 7: " + e;
        }
        if (rank == 1)
          sleepMs(150);
        std::string e = world.allReduce(&x, 1, DType::F32, ReduceOp::Sum);
        return e.empty() ? e : "step 7: " + e;
      },
      timeout(300));
  EXPECT_EQ(error, "rank 0: step 7: timed out after 0.3 s in all_reduce (group \"world\", 1 x f32, sum): rank 2 "
                   "never arrived");

  EXPECT_EQ(runRanks(3, [](int, Communicator &) { return std::string(); }), "");
}

} // namespace
