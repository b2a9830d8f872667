//===- CollectiveWatchdogTest.cpp - The watchdog of asynchronous collectives, on the CPU ---===//
//
// The decision (finished, failed, timed out), its message and the single stop, with queries and a clock that the
// tests drive: most tests poll by hand on a fake clock, so that nothing depends on how busy the machine is. The
// background thread's tests use millisecond timeouts and only bound their waits from above generously (30 s), so
// a loaded machine makes them slower, never wrong.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/CollectiveWatchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace megatron::comm;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

/// A clock that moves only when told.
struct FakeClock {
  Clock::time_point time = Clock::time_point() + std::chrono::hours(1);
  void advance(milliseconds by) { time += by; }
  CollectiveWatchdog::Clock function() {
    return [this] { return time; };
  }
};

/// Counts the stop callback's calls and keeps the last message; waits for the first.
struct StopRecorder {
  std::mutex mutex;
  std::condition_variable called;
  int calls = 0;
  std::string message;

  CollectiveWatchdog::Stop function() {
    return [this](const std::string &reason) {
      std::lock_guard<std::mutex> lock(mutex);
      ++calls;
      message = reason;
      called.notify_all();
    };
  }
  bool waitForCall(milliseconds bound) {
    std::unique_lock<std::mutex> lock(mutex);
    return called.wait_for(lock, bound, [this] { return calls > 0; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mutex);
    return calls;
  }
};

CollectiveWatchdog::Options byHand(int rank, milliseconds timeout, FakeClock &clock) {
  CollectiveWatchdog::Options options;
  options.rank = rank;
  options.timeout = timeout;
  options.background = false;
  options.clock = clock.function();
  return options;
}

CollectiveWatchdog::Query never() {
  return [] { return OperationStatus::running(); };
}

/// Running for `polls` queries, then done.
CollectiveWatchdog::Query doneAfter(int polls) {
  auto left = std::make_shared<int>(polls);
  return [left] { return (*left)-- > 0 ? OperationStatus::running() : OperationStatus::done(); };
}

const CallInfo kAllReduce{CommOp::AllReduce, DType::BF16, ReduceOp::Sum, 6 * 1024 * 1024};

TEST(CollectiveWatchdog, AnOperationThatNeverCompletesFailsAfterTheTimeoutNamingRankAndCollective) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(3, milliseconds(600'000), clock), stop.function());
  watchdog.watch(describeIssued(kAllReduce), "dp", never());
  EXPECT_FALSE(watchdog.poll());
  clock.advance(milliseconds(600'000)); // exactly the timeout: not yet older than it
  EXPECT_FALSE(watchdog.poll());
  EXPECT_EQ(stop.count(), 0);
  clock.advance(milliseconds(1));
  EXPECT_TRUE(watchdog.poll());
  const std::string expected = "rank 3: all_reduce of 12.0 MiB (bf16, sum) on group \"dp\" did not complete within "
                               "10 minutes (a peer never joined it, or hung)";
  EXPECT_EQ(stop.count(), 1);
  EXPECT_EQ(stop.message, expected);
  EXPECT_EQ(watchdog.failure(), expected);
  EXPECT_EQ(watchdog.pending(), 0u);
}

TEST(CollectiveWatchdog, CompletedOperationsNeverFail) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(0, milliseconds(50), clock), stop.function());
  watchdog.watch("all_gather of 4 B per rank (f32)", "tp", doneAfter(0));
  watchdog.watch("all_reduce of 4 B (f32, sum)", "dp", doneAfter(2));
  EXPECT_EQ(watchdog.pending(), 2u);
  EXPECT_FALSE(watchdog.poll()); // the first is done, the second still running
  EXPECT_EQ(watchdog.pending(), 1u);
  clock.advance(milliseconds(30));
  EXPECT_FALSE(watchdog.poll());
  EXPECT_FALSE(watchdog.poll()); // done now
  EXPECT_EQ(watchdog.pending(), 0u);
  clock.advance(milliseconds(1'000'000));
  EXPECT_FALSE(watchdog.poll());
  EXPECT_EQ(stop.count(), 0);
  EXPECT_EQ(watchdog.failure(), "");
}

TEST(CollectiveWatchdog, AnOperationThatCompletesLateButBeforeThePollIsNotATimeout) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(0, milliseconds(50), clock), stop.function());
  watchdog.watch("broadcast of 40 B (f32, root 0)", "world", doneAfter(1));
  EXPECT_FALSE(watchdog.poll());
  clock.advance(milliseconds(500)); // the poll was late: the operation finished meanwhile
  EXPECT_FALSE(watchdog.poll());
  EXPECT_EQ(stop.count(), 0);
}

TEST(CollectiveWatchdog, AnAsynchronousErrorIsReportedAtOnce) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(1, milliseconds(600'000), clock), stop.function());
  watchdog.watch("all_reduce of 4 B (f32, sum)", "tp", never()); // older, still running: not at fault
  watchdog.watch(describeIssued({CommOp::Broadcast, DType::F32, ReduceOp::Sum, 10, 1, 0}), "world",
                 [] { return OperationStatus::failed("NCCL: remote process exited or there was a network error"); });
  EXPECT_TRUE(watchdog.poll()); // no time has passed
  EXPECT_EQ(stop.count(), 1);
  EXPECT_EQ(stop.message, "rank 1: broadcast of 40 B (f32, root 0) on group \"world\" failed: NCCL: remote process "
                          "exited or there was a network error");
}

TEST(CollectiveWatchdog, TheOldestTimedOutOperationIsNamed) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(2, milliseconds(100), clock), stop.function());
  watchdog.watch("first", "tp", doneAfter(0)); // finished: never named
  watchdog.watch("second", "tp", never());
  clock.advance(milliseconds(10));
  watchdog.watch("third", "dp", never());
  clock.advance(milliseconds(200));
  EXPECT_TRUE(watchdog.poll());
  EXPECT_EQ(stop.message, "rank 2: second on group \"tp\" did not complete within 100 ms (a peer never joined it, "
                          "or hung)");
}

TEST(CollectiveWatchdog, TheStopCallbackRunsExactlyOnce) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(0, milliseconds(5), clock), stop.function());
  for (int i = 0; i < 3; ++i)
    watchdog.watch("op " + std::to_string(i), "world", never());
  clock.advance(milliseconds(10));
  EXPECT_TRUE(watchdog.poll());
  watchdog.watch("late", "world", [] { return OperationStatus::failed("ignored"); }); // after the stop: ignored
  EXPECT_EQ(watchdog.pending(), 0u);
  clock.advance(milliseconds(10));
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(watchdog.poll());
  EXPECT_EQ(stop.count(), 1);
  EXPECT_NE(stop.message.find("op 0 on group \"world\""), std::string::npos) << stop.message;
}

TEST(CollectiveWatchdog, DismissedItNeverStopsTheWorld) {
  FakeClock clock;
  StopRecorder stop;
  CollectiveWatchdog watchdog(byHand(0, milliseconds(5), clock), stop.function());
  watchdog.watch("all_reduce of 4 B (f32, sum)", "world", never());
  watchdog.dismiss(); // the world failed for another reason, which its owner reports
  clock.advance(milliseconds(100));
  EXPECT_TRUE(watchdog.poll());
  watchdog.watch("later", "world", never());
  EXPECT_EQ(watchdog.pending(), 0u);
  EXPECT_EQ(stop.count(), 0);
  EXPECT_EQ(watchdog.failure(), "");
}

// The thread polls by itself, on the real clock, and stops the world once from there; the stop callback may
// dismiss the watchdog (as NCCL's world does when it fails) without deadlocking.
TEST(CollectiveWatchdog, TheBackgroundThreadStopsTheWorldAfterTheTimeout) {
  StopRecorder stop;
  CollectiveWatchdog *self = nullptr;
  CollectiveWatchdog::Options options;
  options.rank = 5;
  options.timeout = milliseconds(20);
  options.pollInterval = milliseconds(2);
  CollectiveWatchdog watchdog(options, [&](const std::string &reason) {
    self->dismiss();
    stop.function()(reason);
  });
  self = &watchdog;
  std::atomic<int> queries{0};
  const Clock::time_point issued = Clock::now();
  watchdog.watch("recv of 1.5 KiB (f16) from rank 2", "pp", [&] {
    ++queries;
    return OperationStatus::running();
  });
  ASSERT_TRUE(stop.waitForCall(milliseconds(30'000)));
  EXPECT_GE(Clock::now() - issued, milliseconds(20));
  EXPECT_GT(queries.load(), 0);
  EXPECT_EQ(stop.message, "rank 5: recv of 1.5 KiB (f16) from rank 2 on group \"pp\" did not complete within 20 ms "
                          "(a peer never joined it, or hung)");
  std::this_thread::sleep_for(milliseconds(20)); // several intervals: no second call
  EXPECT_EQ(stop.count(), 1);
}

TEST(CollectiveWatchdog, TheBackgroundThreadLeavesCompletedOperationsAlone) {
  StopRecorder stop;
  CollectiveWatchdog::Options options;
  options.timeout = milliseconds(20);
  options.pollInterval = milliseconds(1);
  CollectiveWatchdog watchdog(options, stop.function());
  // Done at their first query: however late the thread gets to them on a busy machine, they finished (the
  // fake-clock tests above cover operations that need several polls).
  for (int i = 0; i < 20; ++i)
    watchdog.watch("all_reduce of 4 B (f32, sum)", "dp", doneAfter(0));
  const Clock::time_point start = Clock::now();
  while (watchdog.pending() > 0 && Clock::now() - start < milliseconds(30'000))
    std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(watchdog.pending(), 0u);
  std::this_thread::sleep_for(milliseconds(60)); // well past the timeout
  EXPECT_EQ(stop.count(), 0);
  EXPECT_EQ(watchdog.failure(), "");
}

// Destruction wakes the thread at once, however long its poll interval, and forgets what is pending.
TEST(CollectiveWatchdog, DestructionDoesNotWaitForThePollInterval) {
  StopRecorder stop;
  const Clock::time_point start = Clock::now();
  {
    CollectiveWatchdog::Options options;
    options.timeout = milliseconds(1);
    options.pollInterval = milliseconds(3'600'000);
    CollectiveWatchdog idle(options, stop.function());
    CollectiveWatchdog busy(options, stop.function());
    busy.watch("all_reduce of 4 B (f32, sum)", "dp", never());
  }
  EXPECT_LT(Clock::now() - start, milliseconds(30'000));
  EXPECT_EQ(stop.count(), 0);
}

TEST(CollectiveWatchdog, DescribesOperationsSizesAndDurations) {
  EXPECT_EQ(describeIssued(kAllReduce), "all_reduce of 12.0 MiB (bf16, sum)");
  EXPECT_EQ(describeIssued({CommOp::AllGather, DType::F32, ReduceOp::Sum, 65536}),
            "all_gather of 256.0 KiB per rank (f32)");
  EXPECT_EQ(describeIssued({CommOp::ReduceScatter, DType::F32, ReduceOp::Max, 3}),
            "reduce_scatter of 12 B per rank (f32, max)");
  EXPECT_EQ(describeIssued({CommOp::AllGatherDim, DType::F64, ReduceOp::Sum, 4, 8}),
            "all_gather_dim of 256 B per rank (f64)");
  EXPECT_EQ(describeIssued({CommOp::Send, DType::F16, ReduceOp::Sum, 768, 1, 2}), "send of 1.5 KiB (f16) to rank 2");
  EXPECT_EQ(describeIssued({CommOp::Recv, DType::I64, ReduceOp::Sum, 2, 1, 0, 7}), "recv of 16 B (i64) from rank 0 tag 7");
  EXPECT_EQ(describeIssued({CommOp::Split}), "split");
  EXPECT_EQ(describeBytes(0), "0 B");
  EXPECT_EQ(describeBytes(1023), "1023 B");
  EXPECT_EQ(describeBytes(int64_t(2) << 30), "2.0 GiB");
  EXPECT_EQ(describeDuration(milliseconds(600'000)), "10 minutes");
  EXPECT_EQ(describeDuration(milliseconds(60'000)), "1 minute");
  EXPECT_EQ(describeDuration(milliseconds(90'000)), "90 s");
  EXPECT_EQ(describeDuration(milliseconds(1'500)), "1.5 s");
  EXPECT_EQ(describeDuration(milliseconds(250)), "250 ms");
}

} // namespace
