//===- RelativePositionBucket.h - T5's relative-position buckets -*- C++ -*-===//
//
// The bucket of a relative position `relative = key - query`, exactly as HF transformers'
// T5Attention._relative_position_bucket (and Megatron-core's copy of it), including its float32 logarithm. The CPU
// kernels (runtime/cpu) and the CUDA code generator (lib/CodeGen, which bakes the buckets into the kernel's source)
// share this one definition, so both backends put every (query, key) pair in the same bucket. Header-only, plain C++.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_MODEL_RELATIVEPOSITIONBUCKET_H
#define MEGATRON_MODEL_RELATIVEPOSITIONBUCKET_H

#include <cmath>
#include <cstdint>

namespace megatron {

// Float32 operations, as torch's: they give the same buckets, including at the exact boundaries (distance 16, 32,
// 64 of T5's defaults).
inline std::int32_t t5RelativePositionBucket(std::int64_t relative, bool bidirectional, std::int64_t numBuckets,
                                             std::int64_t maxDistance) {
  std::int64_t bucket = 0;
  std::int64_t distance;
  if (bidirectional) {
    numBuckets /= 2;
    if (relative > 0)
      bucket += numBuckets;
    distance = relative < 0 ? -relative : relative;
  } else {
    distance = relative < 0 ? -relative : 0;
  }
  const std::int64_t maxExact = numBuckets / 2;
  if (distance < maxExact)
    return std::int32_t(bucket + distance);
  const float logRatio = std::log(float(distance) / float(maxExact));
  const float logRange = float(std::log(double(maxDistance) / double(maxExact)));
  const float scaled = logRatio / logRange * float(numBuckets - maxExact);
  std::int64_t large = maxExact + std::int64_t(scaled);
  if (large > numBuckets - 1)
    large = numBuckets - 1;
  return std::int32_t(bucket + large);
}

} // namespace megatron

#endif // MEGATRON_MODEL_RELATIVEPOSITIONBUCKET_H
