//===- SimulatorTest.cpp - The host CUDA simulator itself, on hand-written kernels ---===//
//
// Before the simulator judges the generated kernels it is judged here: thread and block indices, barriers that
// really hold every thread until all arrive, warp shuffles with 32-lane semantics, the undefined behaviours it
// must refuse (divergent barriers, partial-warp masks, deadlocks), atomics, and its bf16/fp16 conversions against
// the CPU backend's rounding.
//
//===----------------------------------------------------------------------===//

#include "sim/Simulator.h"

#include "runtime/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

// After gtest: the shim defines CUDA's keywords as macros.
#include "sim/CudaSim.h"

using megatron::codegen::LaunchConfig;
using megatron::cudasim::launch;

namespace {

LaunchConfig config(int64_t gx, int bx, int64_t gy = 1, int by = 1, int bz = 1) {
  LaunchConfig c;
  c.grid[0] = gx;
  c.grid[1] = gy;
  c.block[0] = bx;
  c.block[1] = by;
  c.block[2] = bz;
  return c;
}

TEST(CudaSimulator, EveryThreadOfEveryBlockRunsOnceWithItsIndices) {
  const LaunchConfig c = config(3, 8, 2, 4, 2); // 6 blocks of 64 threads in three dimensions
  std::vector<int> hits(6 * 64, 0);
  ASSERT_EQ(launch(c,
                   [&] {
                     const unsigned block = blockIdx.x + gridDim.x * blockIdx.y;
                     const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
                     ++hits[block * 64 + thread];
                   }),
            "");
  for (size_t i = 0; i < hits.size(); ++i)
    ASSERT_EQ(hits[i], 1) << "thread " << i;
}

TEST(CudaSimulator, NoThreadPassesABarrierBeforeAllArrive) {
  // Every thread writes its slot, waits, then reads its neighbour's: correct only if the barrier holds. The log
  // of events shows every write before any read, in each block.
  std::vector<std::pair<int, int>> log; // (block, phase)
  std::vector<int> read(2 * 256);
  ASSERT_EQ(launch(config(2, 256),
                   [&] {
                     __shared__ int slots[256];
                     slots[threadIdx.x] = int(threadIdx.x) * 3 + int(blockIdx.x);
                     log.emplace_back(blockIdx.x, 0);
                     __syncthreads();
                     log.emplace_back(blockIdx.x, 1);
                     read[blockIdx.x * 256 + threadIdx.x] = slots[(threadIdx.x + 1) % 256];
                   }),
            "");
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 256; ++t)
      ASSERT_EQ(read[b * 256 + t], (t + 1) % 256 * 3 + b);
  ASSERT_EQ(log.size(), 1024u);
  for (size_t i = 0; i < log.size(); ++i)
    EXPECT_EQ(log[i].second, i % 512 < 256 ? 0 : 1) << "event " << i;
}

TEST(CudaSimulator, ShufflesExchangeThirtyTwoLanes) {
  std::vector<int> sum(64), down(64), up(64), idx(64), narrow(64);
  ASSERT_EQ(launch(config(1, 64),
                   [&] {
                     const int lane = int(threadIdx.x % 32), t = int(threadIdx.x);
                     int v = lane;
                     for (int offset = 16; offset > 0; offset >>= 1)
                       v += __shfl_xor_sync(0xffffffffu, v, offset);
                     sum[t] = v;
                     down[t] = __shfl_down_sync(0xffffffffu, 100 + lane, 3);
                     up[t] = __shfl_up_sync(0xffffffffu, 100 + lane, 5);
                     idx[t] = __shfl_sync(0xffffffffu, 1000 * (t / 32) + lane, 7);
                     narrow[t] = __shfl_xor_sync(0xffffffffu, lane, 4, 8); // within groups of 8
                   }),
            "");
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    EXPECT_EQ(sum[t], 496);
    EXPECT_EQ(down[t], 100 + (lane + 3 < 32 ? lane + 3 : lane));
    EXPECT_EQ(up[t], 100 + (lane >= 5 ? lane - 5 : lane));
    EXPECT_EQ(idx[t], 1000 * (t / 32) + 7);
    EXPECT_EQ(narrow[t], lane ^ 4);
  }
}

TEST(CudaSimulator, ShufflesMoveDoublesWhole) {
  std::vector<double> out(32);
  ASSERT_EQ(launch(config(1, 32),
                   [&] { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0 / (threadIdx.x + 1), 1); }),
            "");
  for (int t = 0; t < 32; ++t)
    EXPECT_EQ(out[t], 1.0 / ((t ^ 1) + 1));
}

TEST(CudaSimulator, AThreadReturningBeforeABarrierFailsTheLaunch) {
  std::string error = launch(config(1, 64), [] {
    if (threadIdx.x < 16)
      return;
    __syncthreads();
  });
  EXPECT_NE(error.find("divergent barrier"), std::string::npos) << error;
  EXPECT_NE(error.find("block (0, 0, 0)"), std::string::npos) << error;
}

TEST(CudaSimulator, ThreadsAtDifferentBarriersFailTheLaunch) {
  std::string error = launch(config(1, 64), [] {
    if (threadIdx.x % 2)
      __syncthreads();
    else
      __syncthreads();
  });
  EXPECT_NE(error.find("different barriers"), std::string::npos) << error;
}

TEST(CudaSimulator, AFullMaskInAPartialWarpFailsTheLaunch) {
  std::string error = launch(config(1, 48), [] { (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1); });
  EXPECT_NE(error.find("the warp has only 16 threads"), std::string::npos) << error;
}

TEST(CudaSimulator, AShuffleAndABarrierWaitingForEachOtherDeadlock) {
  std::string error = launch(config(1, 2), [] {
    if (threadIdx.x == 0)
      (void)__shfl_xor_sync(0x3u, 1, 1);
    else
      __syncthreads();
  });
  EXPECT_NE(error.find("deadlock"), std::string::npos) << error;
  // The simulator recovers: the next launch runs normally.
  int ran = 0;
  EXPECT_EQ(launch(config(1, 64), [&] { ++ran; }), "");
  EXPECT_EQ(ran, 64);
}

TEST(CudaSimulator, AtomicsSeeEveryThread) {
  unsigned long long smallest = ~0ull;
  float sum = 0;
  int most = -1;
  ASSERT_EQ(launch(config(4, 128),
                   [&] {
                     const int t = int(blockIdx.x * blockDim.x + threadIdx.x);
                     atomicMin(&smallest, 1000ull - (unsigned long long)(t % 300));
                     atomicAdd(&sum, 1.0f);
                     atomicMax(&most, t);
                   }),
            "");
  EXPECT_EQ(smallest, 701ull);
  EXPECT_EQ(sum, 512.0f);
  EXPECT_EQ(most, 511);
}

TEST(CudaSimulator, InvalidLaunchesAreRefused) {
  EXPECT_NE(launch(config(1, 2048), [] {}).find("invalid block"), std::string::npos);
  EXPECT_NE(launch(config(0, 32), [] {}).find("invalid grid"), std::string::npos);
}

bool sameFloat(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0; }

TEST(CudaSimulator, SixteenBitStoresRoundAsTheCpuBackend) {
  std::mt19937 rng(11);
  std::vector<float> values = {0.0f,     -0.0f,      1.0f,         65504.0f,   65519.99f, 65520.0f,
                               -65520.0f, 1e-8f,     2.98023224e-8f, 5.96e-8f,  6.1035e-5f, 3.0e38f,
                               INFINITY, -INFINITY, NAN,          1.00390625f, 1.01171875f};
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, 4);
    values.push_back(f);
    values.push_back(std::ldexp(float(rng() % 100000) / 1000.0f - 50.0f, int(rng() % 40) - 30));
  }
  for (float x : values) {
    ASSERT_TRUE(sameFloat(__bfloat162float(__float2bfloat16_rn(x)), megatron::cpu::roundToBf16(x))) << x;
    ASSERT_TRUE(sameFloat(__half2float(__float2half_rn(x)), megatron::cpu::roundToF16(x))) << x;
  }
  // Every fp16 and bf16 value reads back to itself.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = __half2float(__half{uint16_t(h)}), b = __bfloat162float(__nv_bfloat16{uint16_t(h)});
    if (!std::isnan(f)) {
      ASSERT_EQ(__float2half_rn(f).x, h);
    }
    if (!std::isnan(b)) {
      ASSERT_EQ(__float2bfloat16_rn(b).x, h);
    }
  }
}

} // namespace
