//===- MemoryPlanner.h - Offsets for buffers from their lifetimes -*- C++ -*-===//

#ifndef MEGATRON_PLAN_MEMORYPLANNER_H
#define MEGATRON_PLAN_MEMORYPLANNER_H

#include <cstdint>
#include <vector>

namespace megatron::plan {

/// A buffer that must hold its value from step `first` to step `last`, inclusive.
struct Lifetime {
  int64_t bytes = 0;
  int first = 0;
  int last = 0;
};

struct MemoryLayout {
  std::vector<int64_t> offsets; // one per lifetime, multiples of the alignment
  int64_t arenaBytes = 0;       // the arena the offsets fit in
  int64_t peakLiveBytes = 0;    // the most bytes live at one step: no layout can use less
};

/// Places buffers so that two whose lifetimes overlap never overlap in memory. Greedy best-fit: the largest
/// buffers first, each at the lowest offset free during its whole lifetime. The arena it needs is usually within a
/// few percent of `peakLiveBytes`, the lower bound, which the result reports beside it.
MemoryLayout planMemory(const std::vector<Lifetime> &lifetimes, int64_t alignment);

} // namespace megatron::plan

#endif // MEGATRON_PLAN_MEMORYPLANNER_H
