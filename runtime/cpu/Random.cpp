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

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

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

std::uint64_t dropoutStream(std::uint64_t iteration, std::uint64_t microBatch, std::uint64_t rngStream) {
  assert(iteration < (std::uint64_t(1) << 32) && microBatch < (1u << 16) && rngStream < (1u << 16));
  return (iteration << 32) | (microBatch << 16) | rngStream;
}

DropoutShard dropoutShard(Index localChunk, Index rank, Index size) {
  assert(localChunk > 0 && size > 0 && rank >= 0 && rank < size);
  const auto chunk = std::uint64_t(localChunk);
  return DropoutShard{chunk, chunk * std::uint64_t(size), chunk * std::uint64_t(rank)};
}

bool dropoutKeeps(const DropoutConfig &config, std::uint64_t index) {
  return randomBits(config.seed, config.stream, config.shard.fullIndex(index)) >= keepThreshold(config.rate);
}

namespace detail {

namespace {

#if defined(__GNUC__) && defined(__x86_64__)
// Philox needs 32×32→64-bit products, which compilers do not vectorize on their own; with AVX2 eight counter
// blocks go through the rounds side by side (vpmuludq on the even and odd lanes), then a 4×8 transpose stores
// them as 32 consecutive words.
// hi and lo 32 bits of a·m in each 32-bit lane.
__attribute__((target("avx2"), always_inline)) inline void mulhilo(__m256i a, __m256i m, __m256i &hi, __m256i &lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

__attribute__((target("avx2"))) void philoxEightBlocks(std::uint64_t first, std::uint32_t s0, std::uint32_t s1,
                                                       std::uint32_t k0, std::uint32_t k1, std::uint32_t *out) {
  const __m256i m0 = _mm256_set1_epi32(int(0xD2511F53u)), m1 = _mm256_set1_epi32(int(0xCD9E8D57u));
  const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
  const __m256i b0 = _mm256_add_epi64(_mm256_set1_epi64x(std::int64_t(first)), lane);
  const __m256i b1 = _mm256_add_epi64(_mm256_set1_epi64x(std::int64_t(first + 4)), lane);
  // Low and high words of the eight 64-bit block numbers, in lane order 0..7.
  const __m256i pickLow = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i p0 = _mm256_permutevar8x32_epi32(b0, pickLow), p1 = _mm256_permutevar8x32_epi32(b1, pickLow);
  __m256i c0 = _mm256_permute2x128_si256(p0, p1, 0x20);
  __m256i c1 = _mm256_permute2x128_si256(p0, p1, 0x31);
  __m256i c2 = _mm256_set1_epi32(int(s0)), c3 = _mm256_set1_epi32(int(s1));
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    __m256i hi0, lo0, hi1, lo1;
    mulhilo(c0, m0, hi0, lo0);
    mulhilo(c2, m1, hi1, lo1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(int(k0)));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(int(k1)));
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
  }
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
  const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2); // blocks 0|4, 1|5
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3); // blocks 2|6, 3|7
  auto *dst = reinterpret_cast<__m256i *>(out);
  _mm256_storeu_si256(dst + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
  _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
  _mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
  _mm256_storeu_si256(dst + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
}

// Asked once, on first use (after libgcc's CPU detection has certainly run).
bool haveAvx2() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return have;
}
#endif

} // namespace

// Partial blocks at either end, and every block without AVX2, go through the scalar philoxBlock.
void randomBitsRange(std::uint64_t seed, std::uint64_t stream, std::uint64_t start, Index count, std::uint32_t *out) {
  const std::uint32_t k0 = std::uint32_t(seed), k1 = std::uint32_t(seed >> 32);
  const std::uint32_t s0 = std::uint32_t(stream), s1 = std::uint32_t(stream >> 32);
  Index i = 0;
  std::uint32_t words[4];
  while (i < count && (start + std::uint64_t(i)) % 4 != 0) {
    const std::uint64_t index = start + std::uint64_t(i), b = index / 4;
    philoxBlock(std::uint32_t(b), std::uint32_t(b >> 32), s0, s1, k0, k1, words);
    out[i++] = words[index % 4];
  }
#if defined(__GNUC__) && defined(__x86_64__)
  if (haveAvx2())
    for (; i + 32 <= count; i += 32)
      philoxEightBlocks((start + std::uint64_t(i)) / 4, s0, s1, k0, k1, out + i);
#endif
  for (; i + 4 <= count; i += 4) {
    const std::uint64_t b = (start + std::uint64_t(i)) / 4;
    philoxBlock(std::uint32_t(b), std::uint32_t(b >> 32), s0, s1, k0, k1, out + i);
  }
  if (i < count) {
    const std::uint64_t b = (start + std::uint64_t(i)) / 4;
    philoxBlock(std::uint32_t(b), std::uint32_t(b >> 32), s0, s1, k0, k1, words);
    for (int w = 0; i < count; ++i, ++w)
      out[i] = words[w];
  }
}

// A shard's local elements are consecutive in the full tensor within each run of localChunk, so a range splits
// where it crosses a run boundary (at most once per localChunk elements).
void dropoutBits(const DropoutConfig &config, std::uint64_t start, Index count, std::uint32_t *out) {
  const DropoutShard &shard = config.shard;
  Index done = 0;
  while (done < count) {
    const std::uint64_t local = start + std::uint64_t(done);
    Index len = count - done;
    if (shard.localChunk != 0)
      len = std::min<Index>(len, Index(shard.localChunk - local % shard.localChunk));
    randomBitsRange(config.seed, config.stream, shard.fullIndex(local), len, out + done);
    done += len;
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
    dropoutBits(config, std::uint64_t(r.begin), r.end - r.begin, bits);
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

template <typename T>
void dropoutAdd(Index n, const DropoutConfig &config, const T *x, const T *residual, T *y, void (*round)(Index, T *)) {
  const bool drops = config.rate > 0.0;
  const std::uint64_t threshold = drops ? keepThreshold(config.rate) : 0;
  const T scale = drops ? T(keepScale(config.rate)) : T(1);
  const Index chunks = ceilDiv(n, kRandomChunk);
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index c = 0; c < chunks; ++c) {
    Range r = block(n, kRandomChunk, c);
    const Index len = r.end - r.begin;
    T dropped[kRandomChunk];
    if (drops) {
      std::uint32_t bits[kRandomChunk];
      dropoutBits(config, std::uint64_t(r.begin), len, bits);
      applyMask(len, bits, threshold, scale, x + r.begin, dropped);
      if (round)
        round(len, dropped);
    } else {
      copy(len, x + r.begin, dropped);
    }
    for (Index i = 0; i < len; ++i) // x and residual are read before y is written: y may alias either
      y[r.begin + i] = residual[r.begin + i] + dropped[i];
  }
}

#define INSTANTIATE(T)                                                                                                \
  template void dropoutForward<T>(Index, const DropoutConfig &, const T *, T *);                                      \
  template void dropoutBackward<T>(Index, const DropoutConfig &, const T *, T *);                                     \
  template void dropoutAdd<T>(Index, const DropoutConfig &, const T *, const T *, T *, void (*)(Index, T *));
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
