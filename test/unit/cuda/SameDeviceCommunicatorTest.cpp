//===- SameDeviceCommunicatorTest.cpp - Ranks sharing one (simulated) device ---===//
//
// The same-device communicator (runtime/device/SameDeviceCommunicator.h) on the host simulator: ranks are threads,
// each with its own stream of one simulated device, and every buffer is device memory. Each collective against
// values computed here in rank order (bitwise, on every rank), bf16 and f16 sums rounded once, messages in both
// orders (the receive posted first, or the message staged in device memory), groups split off the world, and the
// failures: mismatched calls, abort and timeouts end every rank's wait with an error naming the rank, the group
// and the collective.
//
//===----------------------------------------------------------------------===//

#include "SharedSimulatedDevice.h"
#include "SimulatedKernels.h"

#include "DeviceValues.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/device/SameDeviceCommunicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>

using namespace megatron;
using plan::DType;

namespace {

/// `values` stored as `type` in fresh device memory of `backend`.
void *deviceBuffer(device::DeviceBackend &backend, DType type, const std::vector<double> &values, std::string &error) {
  std::vector<std::byte> staging(values.size() * device::deviceBytes(type));
  for (size_t i = 0; i < values.size(); ++i)
    test::writeDevice(type, staging.data(), int64_t(i), values[i]);
  void *memory = backend.allocate(std::max<size_t>(staging.size(), 1), error);
  if (memory && !staging.empty())
    error = backend.copyToDevice(memory, staging.data(), staging.size());
  return memory;
}

std::vector<double> hostValues(device::DeviceBackend &backend, DType type, const void *memory, size_t count,
                               std::string &error) {
  std::vector<std::byte> staging(count * device::deviceBytes(type));
  error = backend.copyToHost(staging.data(), memory, staging.size());
  std::vector<double> values(count);
  for (size_t i = 0; i < count; ++i)
    values[i] = test::readDevice(type, staging.data(), int64_t(i));
  return values;
}

/// Element i of rank r's buffer: distinct, inexact sums in f32 (so the order of the sum shows).
double valueOf(int rank, int64_t i) { return (rank + 1) * 0.1f + float(i) * 1e-3f + (i % 3 == 0 ? 1e3f : 0.0f); }

/// The rank-order sum in f32, rounded once to `type`, as the device must give it.
double rankOrderSum(DType type, const std::vector<std::vector<double>> &ranks, size_t i) {
  float sum = float(ranks[0][i]);
  for (size_t r = 1; r < ranks.size(); ++r)
    sum += float(ranks[r][i]);
  std::byte stored[8];
  test::writeDevice(type, stored, 0, double(sum));
  return test::readDevice(type, stored, 0);
}

struct Fixture {
  Fixture() : device(test::simulatedKernels().library) {}
  std::vector<device::DeviceBackend *> ranks(int n) {
    streams = device.streams(n);
    return test::SharedSimulatedDevice::backends(streams);
  }
  test::SharedSimulatedDevice device;
  std::vector<std::unique_ptr<test::SharedSimulatedDevice::Stream>> streams;
};

comm::ThreadWorldOptions quick(int milliseconds = 20'000) {
  comm::ThreadWorldOptions options;
  options.timeout = std::chrono::milliseconds(milliseconds);
  return options;
}

TEST(SameDeviceCommunicator, CollectivesMatchTheRankOrderResultOnEveryRank) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  Fixture f;
  const int n = 3;
  const int64_t count = 7; // uneven shares of the all-reduce over 3 ranks
  std::vector<std::vector<double>> values(n, std::vector<double>(count * n));
  for (int r = 0; r < n; ++r)
    for (int64_t i = 0; i < count * n; ++i)
      values[size_t(r)][size_t(i)] = valueOf(r, i);

  std::string error = device::runRanksOnDevice(f.ranks(n), [&](int rank, comm::Communicator &world) -> std::string {
    device::DeviceBackend &backend = *f.streams[size_t(rank)];
    std::string error;
    const std::vector<double> &mine = values[size_t(rank)];
    auto check = [&](const char *what, const void *memory, DType type, const std::vector<double> &expected) {
      std::vector<double> got = hostValues(backend, type, memory, expected.size(), error);
      for (size_t i = 0; error.empty() && i < expected.size(); ++i)
        if (got[i] != expected[i] && !(std::isnan(got[i]) && std::isnan(expected[i])))
          error = std::string(what) + ": element " + std::to_string(i) + " is " + std::to_string(got[i]) +
                  ", expected " + std::to_string(expected[i]) + " (rank " + std::to_string(rank) + ")";
      return error;
    };
    std::vector<double> expected(size_t(count * n));

    // all_reduce, sum and max, in place.
    void *data = deviceBuffer(backend, DType::F32, mine, error);
    if (!error.empty() || !(error = world.allReduce(data, count * n, DType::F32, comm::ReduceOp::Sum)).empty())
      return error;
    for (size_t i = 0; i < expected.size(); ++i)
      expected[i] = rankOrderSum(DType::F32, values, i);
    if (!check("all_reduce sum", data, DType::F32, expected).empty())
      return error;
    std::vector<double> withNan = mine;
    if (rank == 1)
      withNan[2] = NAN;
    void *maxima = deviceBuffer(backend, DType::F32, withNan, error);
    if (!error.empty() || !(error = world.allReduce(maxima, count * n, DType::F32, comm::ReduceOp::Max)).empty())
      return error;
    for (size_t i = 0; i < expected.size(); ++i)
      expected[i] = i == 2 ? NAN : values[size_t(n - 1)][i];
    if (!check("all_reduce max", maxima, DType::F32, expected).empty())
      return error;

    // all_gather: every rank's first `count` elements, rank-major.
    void *send = deviceBuffer(backend, DType::F32, std::vector<double>(mine.begin(), mine.begin() + count), error);
    void *gathered = deviceBuffer(backend, DType::F32, std::vector<double>(size_t(count * n)), error);
    if (!error.empty() || !(error = world.allGather(send, gathered, count, DType::F32)).empty())
      return error;
    for (int r = 0; r < n; ++r)
      for (int64_t i = 0; i < count; ++i)
        expected[size_t(r * count + i)] = values[size_t(r)][size_t(i)];
    if (!check("all_gather", gathered, DType::F32, expected).empty())
      return error;

    // reduce_scatter: rank r gets the sum of every rank's chunk r.
    void *full = deviceBuffer(backend, DType::F32, mine, error);
    void *chunk = deviceBuffer(backend, DType::F32, std::vector<double>(size_t(count)), error);
    if (!error.empty() || !(error = world.reduceScatter(full, chunk, count, DType::F32, comm::ReduceOp::Sum)).empty())
      return error;
    std::vector<double> mineSummed(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i)
      mineSummed[size_t(i)] = rankOrderSum(DType::F32, values, size_t(rank * count + i));
    if (!check("reduce_scatter", chunk, DType::F32, mineSummed).empty())
      return error;

    // broadcast from rank 2.
    void *copy = deviceBuffer(backend, DType::F32, mine, error);
    if (!error.empty() || !(error = world.broadcast(copy, count * n, DType::F32, 2)).empty())
      return error;
    if (!check("broadcast", copy, DType::F32, values[2]).empty())
      return error;

    // all_gather_dim and reduce_scatter_dim: [outer = 7][chunk = 1 per rank] <-> [7][3][1].
    void *slice = deviceBuffer(backend, DType::F32, std::vector<double>(mine.begin(), mine.begin() + count), error);
    void *wide = deviceBuffer(backend, DType::F32, std::vector<double>(size_t(count * n)), error);
    if (!error.empty() || !(error = world.allGatherDim(slice, wide, count, 1, DType::F32)).empty())
      return error;
    for (int64_t o = 0; o < count; ++o)
      for (int r = 0; r < n; ++r)
        expected[size_t(o * n + r)] = values[size_t(r)][size_t(o)];
    if (!check("all_gather_dim", wide, DType::F32, expected).empty())
      return error;
    void *narrow = deviceBuffer(backend, DType::F32, std::vector<double>(size_t(count)), error);
    if (!error.empty() || !(error = world.reduceScatterDim(full, narrow, count, 1, DType::F32, comm::ReduceOp::Sum)).empty())
      return error;
    for (int64_t o = 0; o < count; ++o)
      mineSummed[size_t(o)] = rankOrderSum(DType::F32, values, size_t(o * n + rank));
    if (!check("reduce_scatter_dim", narrow, DType::F32, mineSummed).empty())
      return error;

    for (void *memory : {data, maxima, send, gathered, full, chunk, copy, slice, wide, narrow})
      backend.release(memory);
    return {};
  }, quick());
  EXPECT_EQ(error, "");
  // Each rank synchronized its stream before and after every collective.
  for (const auto &stream : f.streams)
    EXPECT_GE(stream->synchronizations, 2 * 7);
}

TEST(SameDeviceCommunicator, SixteenBitSumsAreRoundedOnce) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  for (DType type : {DType::BF16, DType::F16}) {
    Fixture f;
    const int n = 3;
    // Row 0: 1 + 2^-8 + 2^-8 is 1 + 2^-7 in f32, a bf16 number; rounding after each addition would give 1 (a tie
    // to even, twice).
    std::vector<std::vector<double>> values(n, std::vector<double>(64));
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < 64; ++i) {
        std::byte stored[8];
        test::writeDevice(type, stored, 0, i == 0 ? (r == 0 ? 1.0 : 0x1p-8) : valueOf(r, int64_t(i)));
        values[size_t(r)][i] = test::readDevice(type, stored, 0);
      }
    std::string error = device::runRanksOnDevice(f.ranks(n), [&](int rank, comm::Communicator &world) -> std::string {
      device::DeviceBackend &backend = *f.streams[size_t(rank)];
      std::string error;
      void *data = deviceBuffer(backend, type, values[size_t(rank)], error);
      if (!error.empty() || !(error = world.allReduce(data, 64, type, comm::ReduceOp::Sum)).empty())
        return error;
      std::vector<double> got = hostValues(backend, type, data, 64, error);
      backend.release(data);
      for (size_t i = 0; i < 64; ++i)
        if (got[i] != rankOrderSum(type, values, i))
          return std::string(plan::toString(type)) + " element " + std::to_string(i) + ": " + std::to_string(got[i]) +
                 " != " + std::to_string(rankOrderSum(type, values, i));
      if (type == DType::BF16 && got[0] != 1.0 + 0x1p-7)
        return "the bf16 sum was rounded more than once: " + std::to_string(got[0]);
      return {};
    }, quick());
    EXPECT_EQ(error, "") << plan::toString(type);
  }
}

/// `value` as `type` stores it.
double roundedTo(DType type, double value) {
  std::byte stored[8];
  test::writeDevice(type, stored, 0, value);
  return test::readDevice(type, stored, 0);
}

TEST(SameDeviceCommunicator, MessagesArriveWhicheverSideComesFirst) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  Fixture f;
  auto message = [](int sender) {
    std::vector<double> values(10);
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = roundedTo(DType::BF16, valueOf(sender, int64_t(i)));
    return values;
  };
  std::string error = device::runRanksOnDevice(f.ranks(2), [&](int rank, comm::Communicator &world) -> std::string {
    device::DeviceBackend &backend = *f.streams[size_t(rank)];
    std::string error;
    void *data = deviceBuffer(backend, DType::BF16, message(rank), error);
    void *into = deviceBuffer(backend, DType::BF16, std::vector<double>(10), error);
    if (!error.empty())
      return error;
    auto receive = [&](int tag) {
      if (std::string e = world.recv(into, 10, DType::BF16, 1 - rank, tag); !e.empty())
        return e;
      std::string e;
      if (hostValues(backend, DType::BF16, into, 10, e) != message(1 - rank) && e.empty())
        e = "rank " + std::to_string(rank) + " received another message with tag " + std::to_string(tag);
      return e;
    };
    if (rank == 0) {
      // Two tags sent before rank 1 receives (staged in device memory), which receives them in the other order;
      // then a receive posted before rank 1 sends (copied straight into it).
      for (int tag : {3, 5})
        if (!(error = world.send(data, 10, DType::BF16, 1, tag)).empty())
          return error;
      error = receive(7);
    } else {
      for (int tag : {5, 3})
        if (!(error = receive(tag)).empty())
          return error;
      std::this_thread::sleep_for(std::chrono::milliseconds(50)); // rank 0's receive is posted by now
      error = world.send(data, 10, DType::BF16, 0, 7);
    }
    backend.release(data);
    backend.release(into);
    return error;
  }, quick());
  EXPECT_EQ(error, "");
}

TEST(SameDeviceCommunicator, GroupsSplitOffTheWorldReduceOverTheirRanks) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  Fixture f;
  // 4 ranks as tp = 2 x dp = 2: each group sums its two ranks' values.
  std::string error = device::runRanksOnDevice(f.ranks(4), [&](int rank, comm::Communicator &world) -> std::string {
    device::DeviceBackend &backend = *f.streams[size_t(rank)];
    std::string error;
    std::unique_ptr<comm::Communicator> tp = world.split(rank / 2, rank % 2, "tp", error);
    if (!tp)
      return error;
    std::unique_ptr<comm::Communicator> dp = world.split(rank % 2, rank / 2, "dp", error);
    if (!dp)
      return error;
    for (comm::Communicator *group : {tp.get(), dp.get()}) {
      void *data = deviceBuffer(backend, DType::F32, {double(rank), double(10 * rank)}, error);
      if (!error.empty() || !(error = group->allReduce(data, 2, DType::F32, comm::ReduceOp::Sum)).empty())
        return error;
      std::vector<double> got = hostValues(backend, DType::F32, data, 2, error);
      backend.release(data);
      const int peer = group == tp.get() ? rank ^ 1 : rank ^ 2;
      if (got[0] != rank + peer || got[1] != 10 * (rank + peer))
        return "group " + group->name() + " summed to " + std::to_string(got[0]);
    }
    return {};
  }, quick());
  EXPECT_EQ(error, "");
}

TEST(SameDeviceCommunicator, MismatchedCallsFailOnEveryRankNamingTheCollective) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  Fixture f;
  std::vector<std::string> errors(2);
  const auto start = std::chrono::steady_clock::now();
  std::string error = device::runRanksOnDevice(f.ranks(2), [&](int rank, comm::Communicator &world) -> std::string {
    device::DeviceBackend &backend = *f.streams[size_t(rank)];
    std::string error;
    void *data = deviceBuffer(backend, DType::F32, std::vector<double>(8, 1.0), error);
    errors[size_t(rank)] = world.allReduce(data, rank == 0 ? 8 : 6, DType::F32, comm::ReduceOp::Sum);
    backend.release(data);
    return errors[size_t(rank)];
  }, quick());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  for (const std::string &e : errors)
    EXPECT_NE(e.find("mismatched calls: rank 0 called all_reduce (group \"world\", 8 x f32, sum), rank 1 called "
                     "all_reduce (group \"world\", 6 x f32, sum)"),
              std::string::npos)
        << e;
  EXPECT_NE(error.find("mismatched calls"), std::string::npos) << error;
}

TEST(SameDeviceCommunicator, AbortAndTimeoutEndTheWaitNamingTheRank) {
  ASSERT_EQ(test::simulatedKernels().error, "");
  Fixture f;
  std::string waited;
  std::string error = device::runRanksOnDevice(f.ranks(2), [&](int rank, comm::Communicator &world) -> std::string {
    device::DeviceBackend &backend = *f.streams[size_t(rank)];
    std::string error;
    void *data = deviceBuffer(backend, DType::F32, std::vector<double>(4, 1.0), error);
    if (rank == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      world.abort("the device ran out of memory");
      backend.release(data);
      return "the device ran out of memory";
    }
    waited = world.allGather(data, data, 2, DType::F32);
    backend.release(data);
    return waited;
  }, quick());
  EXPECT_NE(waited.find("rank 1 of group \"world\" failed (the device ran out of memory) while rank 0 waited in "
                        "all_gather (group \"world\", 2 x f32 per rank)"),
            std::string::npos)
      << waited;
  EXPECT_EQ(error, "rank 1: the device ran out of memory");

  const auto start = std::chrono::steady_clock::now();
  error = device::runRanksOnDevice(f.ranks(2), [&](int rank, comm::Communicator &world) -> std::string {
    if (rank == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(600)); // then finishes without calling
      return {};
    }
    device::DeviceBackend &backend = *f.streams[0];
    std::string error;
    void *data = deviceBuffer(backend, DType::BF16, std::vector<double>(4, 1.0), error);
    error = world.allReduce(data, 4, DType::BF16, comm::ReduceOp::Sum);
    backend.release(data);
    return error;
  }, quick(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(error, "rank 0: timed out after 0.2 s in all_reduce (group \"world\", 4 x bf16, sum): rank 1 never arrived");
}

TEST(SameDeviceCommunicator, WorldsBeyondOneReductionKernelAreRefused) {
  Fixture f;
  std::string error;
  EXPECT_FALSE(device::createSameDeviceWorld(f.ranks(codegen::kMaxReduceRanks + 1), error));
  EXPECT_EQ(error, "a same-device world of 17 ranks exceeds the 16 that one reduction kernel reads");
  EXPECT_TRUE(device::createSameDeviceWorld(f.ranks(2), error));
}

} // namespace
