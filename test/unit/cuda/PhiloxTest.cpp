//===- PhiloxTest.cpp - The device Philox is the CPU's, bit for bit -------------===//
//
// lib/CodeGen/cuda/Philox.cuh compiles as host C++ too, so the generator the GPU dropout kernels use is checked
// here against runtime/cpu's randomBits and DropoutShard, without a GPU: same bits, same shard mapping, so GPU
// and CPU masks agree.
//
//===----------------------------------------------------------------------===//

// clang-format off
#include "lib/CodeGen/cuda/Common.cuh"
#include "lib/CodeGen/cuda/Philox.cuh"
// clang-format on

#include "runtime/cpu/Kernels.h"

#include <gtest/gtest.h>
#include <random>

namespace {

TEST(CudaPhilox, BitsEqualTheCpuGenerator) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 64; ++trial) {
    const uint64_t seed = rng(), stream = trial < 8 ? uint64_t(trial) : rng();
    // Small indices, indices past 2^32 (the counter's high word) and random ones.
    const uint64_t base = trial % 3 == 0 ? 0 : trial % 3 == 1 ? (uint64_t(1) << 32) - 6 : rng() >> 8;
    for (uint64_t i = base; i < base + 37; ++i)
      ASSERT_EQ(mt::randomBits(seed, stream, i), megatron::cpu::randomBits(seed, stream, i))
          << "seed " << seed << " stream " << stream << " index " << i;
  }
}

TEST(CudaPhilox, KnownAnswerOfRandom123) {
  // Random123's kat_vectors: philox4x32-10 of counter and key all ones.
  mt::u32 out[4];
  mt::philoxBlock(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, out);
  EXPECT_EQ(out[0], 0x408f276du);
  EXPECT_EQ(out[1], 0x41c83b0eu);
  EXPECT_EQ(out[2], 0xa20bc7c6u);
  EXPECT_EQ(out[3], 0x6d5451fdu);
}

TEST(CudaPhilox, ShardIndicesEqualTheCpuMapping) {
  for (auto [local, rank, size] : {std::tuple{6, 1, 4}, std::tuple{1024, 3, 4}, std::tuple{5, 0, 2}}) {
    megatron::cpu::DropoutShard shard = megatron::cpu::dropoutShard(local, rank, size);
    for (uint64_t i = 0; i < 4000; i += 7) {
      uint64_t device = 0;
      if (local == 6)
        device = mt::fullIndex<6, 24>(i, shard.offset);
      else if (local == 1024)
        device = mt::fullIndex<1024, 4096>(i, shard.offset);
      else
        device = mt::fullIndex<5, 10>(i, shard.offset);
      ASSERT_EQ(device, shard.fullIndex(i)) << local << " " << rank << " " << size << " at " << i;
    }
  }
  EXPECT_EQ((mt::fullIndex<0, 0>(12345, 0)), 12345u);
}

} // namespace
