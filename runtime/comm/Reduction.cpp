//===- Reduction.cpp - The one reduction of every communicator ------------===//

#include "Reduction.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <type_traits>

namespace megatron::comm {

namespace {

template <typename T> T add(T a, T b) {
  if constexpr (std::is_integral_v<T>) // wraps around instead of overflowing (undefined for signed types)
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) + static_cast<std::make_unsigned_t<T>>(b));
  else
    return a + b;
}
template <typename T> T maximum(T a, T b) { return (a > b || a != a) ? a : b; } // NaN wins, as in PyTorch

// Through a block buffer, so that a destination may also be a source.
template <typename T, bool kMax>
void reduceBlocks(const void *const *src, int n, void *const *dst, int numDst, int64_t len) {
  constexpr int64_t kBlock = 1024;
  T acc[kBlock];
  for (int64_t begin = 0; begin < len; begin += kBlock) {
    const int64_t m = std::min(kBlock, len - begin);
    std::memcpy(acc, static_cast<const T *>(src[0]) + begin, m * sizeof(T));
    for (int k = 1; k < n; ++k) {
      const T *s = static_cast<const T *>(src[k]) + begin;
      for (int64_t i = 0; i < m; ++i)
        acc[i] = kMax ? maximum(acc[i], s[i]) : add(acc[i], s[i]);
    }
    for (int d = 0; d < numDst; ++d)
      std::memcpy(static_cast<T *>(dst[d]) + begin, acc, m * sizeof(T));
  }
}

template <typename T>
void reduceAs(ReduceOp op, const void *const *src, int n, void *const *dst, int numDst, int64_t len) {
  if (op == ReduceOp::Max)
    reduceBlocks<T, true>(src, n, dst, numDst, len);
  else
    reduceBlocks<T, false>(src, n, dst, numDst, len);
}

} // namespace

void reduceInRankOrder(DType type, ReduceOp op, const void *const *src, int n, void *const *dst, int numDst,
                       int64_t len) {
  switch (type) {
  case DType::F32:
    return reduceAs<float>(op, src, n, dst, numDst, len);
  case DType::F64:
    return reduceAs<double>(op, src, n, dst, numDst, len);
  case DType::I32:
    return reduceAs<int32_t>(op, src, n, dst, numDst, len);
  case DType::I64:
    return reduceAs<int64_t>(op, src, n, dst, numDst, len);
  default:
    assert(false && "reduction of an unsupported type");
  }
}

} // namespace megatron::comm
