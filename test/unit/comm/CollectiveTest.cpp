//===- CollectiveTest.cpp - Every collective against a serial reference ----===//
//
// Each collective on 1, 2, 3, 4 and 8 ranks, for f32, f64 and i32, with counts that divide by nothing (and 0),
// compared bitwise with a serial reference that reduces in rank order (Reference.h). The values have fractional
// parts that round differently in another order, so a reduction in any other order would fail the comparison.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/ThreadCommunicator.h"
#include "test/unit/comm/Reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

using namespace megatron::comm;

namespace {

using namespace megatron::comm::reference; // kCounts, valueOf, valuesOf, reduced: shared with the MPI check

template <typename T> void expectBitwise(const std::vector<T> &got, const std::vector<T> &want, const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  EXPECT_TRUE(got.empty() || std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0) << what;
}

template <typename F> void withType(DType type, F &&f) {
  switch (type) {
  case DType::F32:
    return f(float{});
  case DType::F64:
    return f(double{});
  case DType::I32:
    return f(int32_t{});
  default:
    FAIL() << "no test type";
  }
}

std::string label(int n, DType type, int64_t count, const char *extra = "") {
  return std::to_string(n) + " ranks, " + megatron::plan::toString(type) + ", count " + std::to_string(count) + (*extra ? " " : "") + extra;
}

class CollectiveTest : public ::testing::TestWithParam<std::tuple<int, DType>> {};

TEST_P(CollectiveTest, AllReduce) {
  auto [n, type] = GetParam();
  withType(type, [&, n = n, type = type](auto zero) {
    using T = decltype(zero);
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
      std::vector<std::vector<std::vector<T>>> out(std::size(kCounts), std::vector<std::vector<T>>(n));
      ASSERT_EQ(runRanks(n,
                         [&](int rank, Communicator &world) {
                           for (size_t c = 0; c < std::size(kCounts); ++c) { // one world, many calls
                             out[c][rank] = valuesOf<T>(rank, kCounts[c], 1);
                             if (std::string e = world.allReduce(out[c][rank].data(), kCounts[c], type, op); !e.empty())
                               return e;
                           }
                           return std::string();
                         }),
                "");
      for (size_t c = 0; c < std::size(kCounts); ++c)
        for (int r = 0; r < n; ++r) // identical on every rank, and equal to the rank-order reference
          expectBitwise(out[c][r], reduced<T>(n, kCounts[c], 1, op), label(n, type, kCounts[c], toString(op)));
    }
  });
}

// Each test runs all its cases in one world (one runRanks), which also checks that calls follow each other cleanly.
TEST_P(CollectiveTest, AllGather) {
  auto [n, type] = GetParam();
  withType(type, [&, n = n, type = type](auto zero) {
    using T = decltype(zero);
    std::vector<std::vector<std::vector<T>>> out(std::size(kCounts), std::vector<std::vector<T>>(n));
    ASSERT_EQ(runRanks(n,
                       [&](int rank, Communicator &world) {
                         for (size_t c = 0; c < std::size(kCounts); ++c) {
                           std::vector<T> send = valuesOf<T>(rank, kCounts[c], 2);
                           out[c][rank].assign(n * kCounts[c], T(-1));
                           if (std::string e = world.allGather(send.data(), out[c][rank].data(), kCounts[c], type);
                               !e.empty())
                             return e;
                         }
                         return std::string();
                       }),
              "");
    for (size_t c = 0; c < std::size(kCounts); ++c) {
      std::vector<T> want;
      for (int r = 0; r < n; ++r)
        for (T v : valuesOf<T>(r, kCounts[c], 2))
          want.push_back(v);
      for (int r = 0; r < n; ++r)
        expectBitwise(out[c][r], want, label(n, type, kCounts[c]));
    }
  });
}

TEST_P(CollectiveTest, ReduceScatter) {
  auto [n, type] = GetParam();
  withType(type, [&, n = n, type = type](auto zero) {
    using T = decltype(zero);
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
      std::vector<std::vector<std::vector<T>>> out(std::size(kCounts), std::vector<std::vector<T>>(n));
      ASSERT_EQ(runRanks(n,
                         [&](int rank, Communicator &world) {
                           for (size_t c = 0; c < std::size(kCounts); ++c) {
                             std::vector<T> send = valuesOf<T>(rank, n * kCounts[c], 3);
                             out[c][rank].assign(kCounts[c], T(-1));
                             if (std::string e = world.reduceScatter(send.data(), out[c][rank].data(), kCounts[c],
                                                                     type, op);
                                 !e.empty())
                               return e;
                           }
                           return std::string();
                         }),
                "");
      for (size_t c = 0; c < std::size(kCounts); ++c)
        for (int r = 0; r < n; ++r)
          expectBitwise(out[c][r], reduced<T>(n, kCounts[c], 3, op, r * kCounts[c]),
                        label(n, type, kCounts[c], toString(op)));
    }
  });
}

TEST_P(CollectiveTest, InPlaceAllGatherAndReduceScatter) {
  auto [n, type] = GetParam();
  withType(type, [&, n = n, type = type](auto zero) {
    using T = decltype(zero);
    const int64_t count = 1001;
    std::vector<std::vector<T>> gathered(n), scattered(n);
    ASSERT_EQ(runRanks(n,
                       [&](int rank, Communicator &world) {
                         // all_gather with the send buffer inside the receive buffer, at this rank's place.
                         gathered[rank].assign(n * count, T(-1));
                         std::vector<T> mine = valuesOf<T>(rank, count, 4);
                         std::copy(mine.begin(), mine.end(), gathered[rank].begin() + rank * count);
                         T *slice = gathered[rank].data() + rank * count;
                         if (std::string e = world.allGather(slice, gathered[rank].data(), count, type); !e.empty())
                           return e;
                         // reduce_scatter leaving the result in the send buffer, at this rank's place.
                         scattered[rank] = valuesOf<T>(rank, n * count, 5);
                         T *own = scattered[rank].data() + rank * count;
                         return world.reduceScatter(scattered[rank].data(), own, count, type, ReduceOp::Sum);
                       }),
              "");
    std::vector<T> want;
    for (int r = 0; r < n; ++r)
      for (T v : valuesOf<T>(r, count, 4))
        want.push_back(v);
    for (int r = 0; r < n; ++r) {
      expectBitwise(gathered[r], want, label(n, type, count, "all_gather"));
      std::vector<T> own(scattered[r].begin() + r * count, scattered[r].begin() + (r + 1) * count);
      expectBitwise(own, reduced<T>(n, count, 5, ReduceOp::Sum, r * count), label(n, type, count, "reduce_scatter"));
    }
  });
}

TEST_P(CollectiveTest, Broadcast) {
  auto [n, type] = GetParam();
  withType(type, [&, n = n, type = type](auto zero) {
    using T = decltype(zero);
    const int64_t counts[] = {0, 1, 7, 4099};
    // out[root][count index][rank]
    std::vector<std::vector<std::vector<std::vector<T>>>> out(
        n, std::vector<std::vector<std::vector<T>>>(std::size(counts), std::vector<std::vector<T>>(n)));
    ASSERT_EQ(runRanks(n,
                       [&](int rank, Communicator &world) {
                         for (int root = 0; root < n; ++root)
                           for (size_t c = 0; c < std::size(counts); ++c) {
                             std::vector<T> &data = out[root][c][rank];
                             data = valuesOf<T>(rank, counts[c], 6);
                             if (std::string e = world.broadcast(data.data(), counts[c], type, root); !e.empty())
                               return e;
                           }
                         return std::string();
                       }),
              "");
    for (int root = 0; root < n; ++root)
      for (size_t c = 0; c < std::size(counts); ++c)
        for (int r = 0; r < n; ++r)
          expectBitwise(out[root][c][r], valuesOf<T>(root, counts[c], 6),
                        label(n, type, counts[c], "from root") + " " + std::to_string(root));
  });
}

// The thread implementation's direct *Dim collectives against the base class's default (contiguous collective,
// then a local permutation, as NCCL will run them) and against the reference.
TEST_P(CollectiveTest, DimVariantsMatchTheDefaultPath) {
  auto [n, type] = GetParam();
  withType(type, [&, n = n, type = type](auto zero) {
    using T = decltype(zero);
    struct Case {
      int64_t outer, chunk;
      std::vector<std::vector<T>> gather, gatherDefault, scatter, scatterDefault; // per rank
    };
    std::vector<Case> cases;
    for (int64_t outer : {1, 3, 5})
      for (int64_t chunk : {0, 1, 7, 300})
        cases.push_back({outer, chunk, std::vector<std::vector<T>>(n), std::vector<std::vector<T>>(n),
                         std::vector<std::vector<T>>(n), std::vector<std::vector<T>>(n)});
    ASSERT_EQ(runRanks(n,
                       [&](int rank, Communicator &world) {
                         for (Case &c : cases) {
                           const int64_t outer = c.outer, chunk = c.chunk;
                           std::vector<T> send = valuesOf<T>(rank, outer * chunk, 7);
                           std::vector<T> full = valuesOf<T>(rank, outer * n * chunk, 8);
                           c.gather[rank].assign(outer * n * chunk, T(-1));
                           c.gatherDefault[rank].assign(outer * n * chunk, T(-1));
                           c.scatter[rank].assign(outer * chunk, T(-1));
                           c.scatterDefault[rank].assign(outer * chunk, T(-1));
                           std::string e = world.allGatherDim(send.data(), c.gather[rank].data(), outer, chunk, type);
                           if (e.empty())
                             e = world.Communicator::allGatherDim(send.data(), c.gatherDefault[rank].data(), outer,
                                                                  chunk, type);
                           if (e.empty())
                             e = world.reduceScatterDim(full.data(), c.scatter[rank].data(), outer, chunk, type,
                                                        ReduceOp::Sum);
                           if (e.empty())
                             e = world.Communicator::reduceScatterDim(full.data(), c.scatterDefault[rank].data(), outer,
                                                                      chunk, type, ReduceOp::Sum);
                           if (!e.empty())
                             return e;
                         }
                         return std::string();
                       }),
              "");
    for (const Case &c : cases) {
      const int64_t outer = c.outer, chunk = c.chunk;
      // all_gather_dim: recv[o][k][i] = rank k's send[o][i].
      std::vector<T> gatherWant(outer * n * chunk);
      for (int64_t o = 0; o < outer; ++o)
        for (int k = 0; k < n; ++k)
          for (int64_t i = 0; i < chunk; ++i)
            gatherWant[(o * n + k) * chunk + i] = valueOf<T>(k, o * chunk + i, 7);
      std::string what = label(n, type, chunk) + ", outer " + std::to_string(outer);
      for (int r = 0; r < n; ++r) {
        expectBitwise(c.gather[r], gatherWant, what + " all_gather_dim");
        expectBitwise(c.gatherDefault[r], gatherWant, what + " all_gather_dim (default)");
        // reduce_scatter_dim: recv[o][i] = the rank-order sum of every rank's send[o][r][i].
        std::vector<T> scatterWant(outer * chunk);
        for (int64_t o = 0; o < outer; ++o) {
          std::vector<T> part = reduced<T>(n, chunk, 8, ReduceOp::Sum, (o * n + r) * chunk);
          std::copy(part.begin(), part.end(), scatterWant.begin() + o * chunk);
        }
        expectBitwise(c.scatter[r], scatterWant, what + " reduce_scatter_dim");
        expectBitwise(c.scatterDefault[r], scatterWant, what + " reduce_scatter_dim (default)");
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(RanksAndTypes, CollectiveTest,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 8),
                                            ::testing::Values(DType::F32, DType::F64, DType::I32)),
                         [](const auto &info) {
                           return std::to_string(std::get<0>(info.param)) + "ranks_" +
                                  megatron::plan::toString(std::get<1>(info.param));
                         });

TEST(Collective, MaxPropagatesNaNAndIntegerSumsWrapAround) {
  std::vector<std::vector<float>> floats(3);
  std::vector<std::vector<int32_t>> ints(3);
  ASSERT_EQ(runRanks(3,
                     [&](int rank, Communicator &world) {
                       floats[rank] = {rank == 1 ? NAN : 1.0f, float(rank), -float(rank)};
                       ints[rank] = {rank == 0 ? INT32_MAX : 1};
                       std::string e = world.allReduce(floats[rank].data(), 3, DType::F32, ReduceOp::Max);
                       return e.empty() ? world.allReduce(ints[rank].data(), 1, DType::I32, ReduceOp::Sum) : e;
                     }),
            "");
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(std::isnan(floats[r][0]));
    EXPECT_EQ(floats[r][1], 2.0f);
    EXPECT_EQ(floats[r][2], 0.0f);
    EXPECT_EQ(ints[r][0], INT32_MIN + 1); // INT32_MAX + 2, wrapped
  }
}

TEST(Collective, OtherTypes) {
  // i64 reduces; bf16 moves (gathers, broadcast) but does not reduce.
  std::vector<std::vector<int64_t>> sums(2);
  std::vector<std::vector<uint16_t>> gathered(2);
  ASSERT_EQ(runRanks(2,
                     [&](int rank, Communicator &world) {
                       sums[rank] = {int64_t(1) << 40, rank};
                       std::string e = world.allReduce(sums[rank].data(), 2, DType::I64, ReduceOp::Sum);
                       uint16_t bf16[2] = {uint16_t(0x3f80 + rank), uint16_t(0x4000 + rank)};
                       gathered[rank].assign(4, 0);
                       return e.empty() ? world.allGather(bf16, gathered[rank].data(), 2, DType::BF16) : e;
                     }),
            "");
  EXPECT_EQ(sums[1], (std::vector<int64_t>{int64_t(1) << 41, 1}));
  EXPECT_EQ(gathered[0], (std::vector<uint16_t>{0x3f80, 0x4000, 0x3f81, 0x4001}));
  std::string error = runRanks(2, [&](int rank, Communicator &world) {
    uint16_t x = 0;
    return world.allReduce(&x, 1, DType::BF16, ReduceOp::Sum);
  });
  EXPECT_NE(error.find("all_reduce (group \"world\", 1 x bf16, sum): reductions of bf16 are not supported"),
            std::string::npos)
      << error;
}

// Many small collectives back to back: the generation-counted rounds must neither deadlock nor mix up calls.
TEST(Collective, StressManySmallAllReduces) {
  const int n = 4, iterations = 2000;
  std::vector<int> bad(n, 0);
  ThreadWorldOptions options;
  options.timeout = std::chrono::seconds(20); // a deadlock fails the test instead of hanging it
  ASSERT_EQ(runRanks(
                n,
                [&](int rank, Communicator &world) {
                  for (int it = 0; it < iterations; ++it) {
                    double x[3] = {double(rank + it), 1.0, double(rank)};
                    if (std::string e = world.allReduce(x, 3, DType::F64, it % 2 ? ReduceOp::Max : ReduceOp::Sum);
                        !e.empty())
                      return e;
                    const double want0 = it % 2 ? double(n - 1 + it) : double(n * it + n * (n - 1) / 2);
                    const double want1 = it % 2 ? 1.0 : double(n);
                    bad[rank] += x[0] != want0 || x[1] != want1;
                  }
                  return std::string();
                },
                options),
            "");
  EXPECT_EQ(bad, std::vector<int>(n, 0));
}

} // namespace
