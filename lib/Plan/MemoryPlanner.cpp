//===- MemoryPlanner.cpp - Offsets for buffers from their lifetimes --------===//

#include "megatron/Plan/MemoryPlanner.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace megatron::plan {

namespace {
int64_t alignUp(int64_t value, int64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

bool overlapInTime(const Lifetime &a, const Lifetime &b) { return a.first <= b.last && b.first <= a.last; }

int64_t peakLive(const std::vector<Lifetime> &lifetimes, int64_t alignment) {
  std::map<int, int64_t> delta; // step -> change in live bytes
  for (const Lifetime &l : lifetimes) {
    delta[l.first] += alignUp(l.bytes, alignment);
    delta[l.last + 1] -= alignUp(l.bytes, alignment);
  }
  int64_t live = 0, peak = 0;
  for (const auto &[step, change] : delta) {
    live += change;
    peak = std::max(peak, live);
  }
  return peak;
}
} // namespace

MemoryLayout planMemory(const std::vector<Lifetime> &lifetimes, int64_t alignment) {
  MemoryLayout layout;
  layout.offsets.assign(lifetimes.size(), 0);
  layout.peakLiveBytes = peakLive(lifetimes, alignment);

  std::vector<size_t> order(lifetimes.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by start, then by index, so that the layout is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (lifetimes[a].bytes != lifetimes[b].bytes)
      return lifetimes[a].bytes > lifetimes[b].bytes;
    return lifetimes[a].first < lifetimes[b].first;
  });

  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy; // [offset, end) of placed buffers alive at the same time
  for (size_t index : order) {
    const Lifetime &current = lifetimes[index];
    int64_t size = alignUp(std::max<int64_t>(current.bytes, 1), alignment);
    busy.clear();
    for (size_t other : placed)
      if (overlapInTime(current, lifetimes[other]))
        busy.push_back({layout.offsets[other], layout.offsets[other] + alignUp(lifetimes[other].bytes, alignment)});
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap that holds the buffer; past the last busy range if none does.
    int64_t cursor = 0, best = -1, bestGap = 0;
    for (const auto &[start, end] : busy) {
      if (start - cursor >= size && (best < 0 || start - cursor < bestGap)) {
        best = cursor;
        bestGap = start - cursor;
      }
      cursor = std::max(cursor, end);
    }
    int64_t offset = best >= 0 ? best : cursor;
    layout.offsets[index] = offset;
    layout.arenaBytes = std::max(layout.arenaBytes, offset + size);
    placed.push_back(index);
  }
  return layout;
}

} // namespace megatron::plan
