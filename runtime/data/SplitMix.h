//===- SplitMix.h - The corpus's counter-keyed random numbers -*- C++ -*-===//
//
// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA'14; the seeding
// generator of xoshiro): a 64-bit Weyl sequence through a bijective mixer. Each document gets its own stream,
// keyed by (seed, document index), so any document is regenerated without generating the ones before it. Integer
// arithmetic only: the same numbers on every platform and compiler.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_SPLITMIX_H
#define MEGATRON_RUNTIME_DATA_SPLITMIX_H

#include <cstdint>

namespace megatron::data {

/// SplitMix64's output function: a bijection of 64-bit words with good avalanche.
inline uint64_t splitMix64Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class SplitMix64 {
public:
  /// The stream of one (seed, key) pair; different pairs give unrelated streams.
  SplitMix64(uint64_t seed, uint64_t key)
      : state(splitMix64Mix(splitMix64Mix(seed ^ 0x6A09E667F3BCC909ull) ^ key)) {}

  uint64_t next() {
    state += 0x9E3779B97F4A7C15ull;
    return splitMix64Mix(state);
  }

  /// A uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
  uint64_t state;
};

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_SPLITMIX_H
