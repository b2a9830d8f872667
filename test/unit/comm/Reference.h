//===- Reference.h - Serial references of the communicators' tests -*- C++ -*-===//
//
// The inputs and the serial results that every implementation's collectives are compared with bitwise: the
// thread tests (CollectiveTest.cpp) and the multi-process MPI check (MpiCommunicatorMain.cpp) use the same ones.
// The values have fractional parts that round differently in another order, so a reduction in any other order
// than rank order fails the comparison.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_COMM_REFERENCE_H
#define MEGATRON_TEST_UNIT_COMM_REFERENCE_H

#include "runtime/comm/Communicator.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace megatron::comm::reference {

/// Element counts that divide by nothing (and 0); 4099 x 4 ranks also crosses the MPI all-reduce's switch from
/// gather-and-reduce to all-to-all.
inline constexpr int64_t kCounts[] = {0, 1, 2, 5, 7, 1000, 4099};

/// Rank `rank`'s element i of the input numbered `salt`.
template <typename T> T valueOf(int rank, int64_t i, int salt) {
  int64_t v = (rank * 131 + i * 17 + salt * 7) % 1009;
  if constexpr (std::is_floating_point_v<T>)
    return static_cast<T>(v * 0.0137 - 6.1);
  else
    return static_cast<T>(v - 500);
}

template <typename T> std::vector<T> valuesOf(int rank, int64_t count, int salt) {
  std::vector<T> values(count);
  for (int64_t i = 0; i < count; ++i)
    values[i] = valueOf<T>(rank, i, salt);
  return values;
}

template <typename T> T combine(ReduceOp op, T a, T b) { return op == ReduceOp::Sum ? T(a + b) : std::max(a, b); }

/// Element i of the reduction over ranks 0..n-1 of valueOf(rank, offset + i), in rank order.
template <typename T> std::vector<T> reduced(int n, int64_t count, int salt, ReduceOp op, int64_t offset = 0) {
  std::vector<T> out(count);
  for (int64_t i = 0; i < count; ++i) {
    out[i] = valueOf<T>(0, offset + i, salt);
    for (int r = 1; r < n; ++r)
      out[i] = combine(op, out[i], valueOf<T>(r, offset + i, salt));
  }
  return out;
}

} // namespace megatron::comm::reference

#endif // MEGATRON_TEST_UNIT_COMM_REFERENCE_H
