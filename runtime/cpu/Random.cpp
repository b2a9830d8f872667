//===- Random.cpp - Philox4x32-10 and inverted dropout -----------------------===//
//
// Dropout's mask is never stored: element i of a dropout op is kept iff the Philox bits of (seed, stream, i)
// are >= rate·2^32, and the backward regenerates the same bits. Counter-based generation also makes the mask
// independent of how the elements are split over threads.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"
#include "runtime/cpu/Philox.h"

namespace megatron::cpu {

using namespace detail;

void philox4x32x10(const std::uint32_t counter[4], const std::uint32_t key[2], std::uint32_t out[4]) {
  philoxBlock(counter[0], counter[1], counter[2], counter[3], key[0], key[1], out);
}

std::uint32_t randomBits(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  std::uint32_t out[4];
  std::uint64_t block = index / 4;
  philoxBlock(std::uint32_t(block), std::uint32_t(block >> 32), std::uint32_t(stream), std::uint32_t(stream >> 32),
              std::uint32_t(seed), std::uint32_t(seed >> 32), out);
  return out[index % 4];
}

double randomUniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return randomBits(seed, stream, index) * (1.0 / 4294967296.0);
}

bool dropoutKeeps(const DropoutConfig &config, std::uint64_t index) {
  return randomBits(config.seed, config.stream, index) >= keepThreshold(config.rate);
}

namespace detail {

// Whole counter blocks are generated 4 words at a time; the loop over blocks has independent iterations, which
// the clones vectorize (32×32→64-bit multiplies).
MEGATRON_CPU_CLONES void randomBitsRange(std::uint64_t seed, std::uint64_t stream, std::uint64_t start, Index count,
                                         std::uint32_t *out) {
  const std::uint32_t k0 = std::uint32_t(seed), k1 = std::uint32_t(seed >> 32);
  const std::uint32_t s0 = std::uint32_t(stream), s1 = std::uint32_t(stream >> 32);
  Index i = 0;
  // Leading partial block.
  while (i < count && (start + i) % 4 != 0) {
    std::uint32_t words[4];
    std::uint64_t b = (start + i) / 4;
    philoxBlock(std::uint32_t(b), std::uint32_t(b >> 32), s0, s1, k0, k1, words);
    out[i] = words[(start + i) % 4];
    ++i;
  }
  const Index whole = (count - i) / 4;
  const std::uint64_t first = (start + i) / 4;
  std::uint32_t *dst = out + i;
  for (Index j = 0; j < whole; ++j) {
    std::uint64_t b = first + std::uint64_t(j);
    philoxBlock(std::uint32_t(b), std::uint32_t(b >> 32), s0, s1, k0, k1, dst + 4 * j);
  }
  i += 4 * whole;
  // Trailing partial block.
  if (i < count) {
    std::uint32_t words[4];
    std::uint64_t b = (start + i) / 4;
    philoxBlock(std::uint32_t(b), std::uint32_t(b >> 32), s0, s1, k0, k1, words);
    for (int w = 0; i < count; ++i, ++w)
      out[i] = words[w];
  }
}

} // namespace detail

namespace {

template <typename T>
MEGATRON_CPU_CLONES void applyMask(Index n, const std::uint32_t *bits, std::uint64_t threshold, T scale, const T *x,
                                   T *y) {
  for (Index i = 0; i < n; ++i)
    y[i] = std::uint64_t(bits[i]) >= threshold ? x[i] * scale : T(0);
}

template <typename T> void dropout(Index n, const DropoutConfig &config, const T *x, T *y) {
  if (!(config.rate > 0.0)) {
    if (x != y)
      copy(n, x, y);
    return;
  }
  const std::uint64_t threshold = keepThreshold(config.rate);
  const T scale = T(keepScale(config.rate));
  const Index chunks = ceilDiv(n, kRandomChunk);
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index c = 0; c < chunks; ++c) {
    Range r = block(n, kRandomChunk, c);
    std::uint32_t bits[kRandomChunk];
    randomBitsRange(config.seed, config.stream, std::uint64_t(r.begin), r.end - r.begin, bits);
    applyMask(r.end - r.begin, bits, threshold, scale, x + r.begin, y + r.begin);
  }
}

} // namespace

// The backward is the same mask and scale applied to the gradient.
template <typename T> void dropoutForward(Index n, const DropoutConfig &config, const T *x, T *y) {
  dropout(n, config, x, y);
}
template <typename T> void dropoutBackward(Index n, const DropoutConfig &config, const T *dy, T *dx) {
  dropout(n, config, dy, dx);
}

#define INSTANTIATE(T)                                                                                                \
  template void dropoutForward<T>(Index, const DropoutConfig &, const T *, T *);                                      \
  template void dropoutBackward<T>(Index, const DropoutConfig &, const T *, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
