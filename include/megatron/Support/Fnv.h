//===- Fnv.h - FNV-1a, the project's content fingerprint -------*- C++ -*-===//
//
// 64-bit FNV-1a: what plans and index caches record to tell a damaged or mismatched file from a good one. Not a
// security measure (checkpoints use xxHash for speed on large tensors).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_SUPPORT_FNV_H
#define MEGATRON_SUPPORT_FNV_H

#include <cstdint>
#include <string_view>

namespace megatron {

inline uint64_t fnv1a(std::string_view bytes) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

} // namespace megatron

#endif // MEGATRON_SUPPORT_FNV_H
