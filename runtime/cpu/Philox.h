//===- Philox.h - The counter-based generator behind dropout -*- C++ -*-===//
//
// Internal to runtime/cpu. Dropout needs the same mask in the forward and the backward without storing it, and
// the same mask whatever the thread count: each element's random bits are a pure function of (seed, stream,
// element index), Philox4x32-10 of Random123 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), the generator of cuRAND and PyTorch's CUDA dropout.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CPU_PHILOX_H
#define MEGATRON_RUNTIME_CPU_PHILOX_H

#include "runtime/cpu/Kernels.h"

#include <cmath>
#include <cstdint>

namespace megatron::cpu::detail {

/// Philox4x32-10 of one counter block.
inline void philoxBlock(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3, std::uint32_t k0,
                        std::uint32_t k1, std::uint32_t out[4]) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u; // the key schedule's Weyl constants
      k1 += 0xBB67AE85u;
    }
    std::uint64_t p0 = std::uint64_t(0xD2511F53u) * c0;
    std::uint64_t p1 = std::uint64_t(0xCD9E8D57u) * c2;
    std::uint32_t n0 = std::uint32_t(p1 >> 32) ^ c1 ^ k0;
    std::uint32_t n2 = std::uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = std::uint32_t(p1);
    c3 = std::uint32_t(p0);
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/// out[i] = randomBits(seed, stream, start + i) for i < count.
void randomBitsRange(std::uint64_t seed, std::uint64_t stream, std::uint64_t start, Index count,
                     std::uint32_t *out);

/// out[i] = the random bits of local element start + i of a dropout op (count elements): randomBitsRange over the
/// full-tensor indices of config.shard, one call per run of consecutive indices.
void dropoutBits(const DropoutConfig &config, std::uint64_t start, Index count, std::uint32_t *out);

/// Element kept iff its 32 random bits >= this: bits/2^32 >= rate exactly. 0 keeps all, 2^32 none.
inline std::uint64_t keepThreshold(double rate) {
  if (!(rate > 0.0))
    return 0;
  if (rate >= 1.0)
    return std::uint64_t(1) << 32;
  return std::uint64_t(std::ceil(rate * 4294967296.0));
}

/// The scale of kept elements, 1/(1 − rate); 0 when everything is dropped.
inline double keepScale(double rate) { return rate >= 1.0 ? 0.0 : 1.0 / (1.0 - rate); }

/// Elements of the stack buffers that dropout kernels fill with random bits at a time.
constexpr Index kRandomChunk = 1024;

} // namespace megatron::cpu::detail

#endif // MEGATRON_RUNTIME_CPU_PHILOX_H
