//===- InOrderP2PCommunicatorTest.cpp - The strict communicator itself ------===//
//
// InOrderP2PCommunicator.h over the host thread world: two ranks that each send to the other first deadlock and
// are told so (at once, not after a timeout), the same calls as a group complete and move the bytes, messages
// received in another order than sent are a mismatch naming both calls, and a wait that outlasts the timeout while
// the peer is busy elsewhere fails rather than hangs.
//
//===----------------------------------------------------------------------===//

#include "InOrderP2PCommunicator.h"

#include "runtime/comm/ThreadCommunicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

using namespace megatron;

namespace {

using plan::DType;

/// body(rank, strict world) on two ranks of a host thread world wrapped by `strict`.
std::string onTwoRanks(test::InOrderP2PWorld &strict,
                       const std::function<std::string(int, comm::Communicator &)> &body) {
  comm::ThreadWorldOptions options;
  options.timeout = std::chrono::seconds(20);
  return comm::runRanks(2, [&](int rank, comm::Communicator &world) {
    std::unique_ptr<comm::Communicator> wrapped = strict.wrap(world, rank);
    return body(rank, *wrapped);
  }, options);
}

TEST(InOrderP2PCommunicator, TwoRanksSendingFirstDeadlockAndAreTold) {
  test::InOrderP2PWorld strict(2, std::chrono::seconds(20));
  const auto start = std::chrono::steady_clock::now();
  std::string error = onTwoRanks(strict, [](int rank, comm::Communicator &world) {
    std::vector<float> out(4, float(rank)), in(4);
    const int peer = 1 - rank;
    if (std::string e = world.send(out.data(), 4, DType::F32, peer, 7); !e.empty())
      return e;
    return world.recv(in.data(), 4, DType::F32, peer, 7);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  %s (after %.3f s)\n", error.c_str(), seconds);
  EXPECT_NE(error.find("deadlock: rank 0 waits in send to rank 1 tag 7"), std::string::npos) << error;
  EXPECT_NE(error.find("rank 1 waits in send to rank 0 tag 7"), std::string::npos) << error;
  EXPECT_LT(seconds, 10.0) << "found when both wait, not at the timeout";
  EXPECT_NE(strict.failure().find("deadlock"), std::string::npos);
}

TEST(InOrderP2PCommunicator, TheSameExchangeAsAGroupCompletes) {
  test::InOrderP2PWorld strict(2, std::chrono::seconds(20));
  std::vector<std::vector<float>> received(2);
  std::string error = onTwoRanks(strict, [&](int rank, comm::Communicator &world) {
    std::vector<float> out(4, float(10 + rank)), in(4, -1);
    const int peer = 1 - rank;
    std::string e = world.groupStart();
    if (e.empty())
      e = world.send(out.data(), 4, DType::F32, peer, 7);
    if (e.empty())
      e = world.recv(in.data(), 4, DType::F32, peer, 7);
    if (e.empty())
      e = world.groupEnd();
    received[size_t(rank)] = in;
    return e;
  });
  ASSERT_EQ(error, "");
  EXPECT_EQ(received[0], std::vector<float>(4, 11.0f));
  EXPECT_EQ(received[1], std::vector<float>(4, 10.0f));
  EXPECT_EQ(strict.failure(), "");
}

TEST(InOrderP2PCommunicator, MessagesReceivedOutOfOrderAreAMismatch) {
  // Tagged communicators deliver these; NCCL pairs the first send with the first recv.
  test::InOrderP2PWorld strict(2, std::chrono::seconds(20));
  std::string error = onTwoRanks(strict, [](int rank, comm::Communicator &world) {
    std::vector<float> a(4, 1), b(4, 2);
    std::string e = world.groupStart();
    if (rank == 0) {
      e = world.send(a.data(), 4, DType::F32, 1, 1);
      if (e.empty())
        e = world.send(b.data(), 4, DType::F32, 1, 2);
    } else {
      e = world.recv(b.data(), 4, DType::F32, 0, 2);
      if (e.empty())
        e = world.recv(a.data(), 4, DType::F32, 0, 1);
    }
    return e.empty() ? world.groupEnd() : e;
  });
  EXPECT_NE(error.find("mismatch: rank 1's recv from rank 0 tag 2 (group \"world\", 4 x f32) matched rank 0's send "
                       "to rank 1 tag 1"),
            std::string::npos)
      << error;
}

TEST(InOrderP2PCommunicator, AWaitLongerThanTheTimeoutFails) {
  // Rank 1 is busy elsewhere (not in a strict call), so the wait is bounded by the timeout only.
  test::InOrderP2PWorld strict(2, std::chrono::milliseconds(200));
  std::string error = onTwoRanks(strict, [](int rank, comm::Communicator &world) {
    std::vector<float> data(2, 3);
    if (rank == 0)
      return world.recv(data.data(), 2, DType::F32, 1, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return world.send(data.data(), 2, DType::F32, 0, 0);
  });
  EXPECT_NE(error.find("deadlock: rank 0 waits in recv from rank 1 (group \"world\", 2 x f32) (rank 0 waited 200 ms)"),
            std::string::npos)
      << error;
}

TEST(InOrderP2PCommunicator, SplitGroupsMatchTheirOwnMessages) {
  // Two groups of one rank pair each would be trivial; a split of the world into one group of both ranks, then
  // messages there: the child's channels are its own and shared by its two members.
  test::InOrderP2PWorld strict(2, std::chrono::seconds(20));
  std::vector<float> received(3, 0);
  std::string error = onTwoRanks(strict, [&](int rank, comm::Communicator &world) {
    std::string e;
    std::unique_ptr<comm::Communicator> pp = world.split(0, rank, "pp", e);
    if (!pp)
      return e;
    std::vector<float> data(3, 5);
    if (rank == 0)
      return pp->send(data.data(), 3, DType::F32, 1, 4);
    return pp->recv(received.data(), 3, DType::F32, 0, 4);
  });
  ASSERT_EQ(error, "");
  EXPECT_EQ(received, std::vector<float>(3, 5.0f));
}

} // namespace
