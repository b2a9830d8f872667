//===- StashSlots.cpp - Which stash slot each micro-batch in flight holds -----===//

#include "megatron/Plan/Plan.h"

#include <algorithm>

namespace megatron::plan {

int StashSlots::acquire(const PipelineStep &step) {
  int &slot = slotOf.try_emplace({step.chunk, step.microBatch}, -1).first->second;
  if (!step.forward)
    return slot;
  auto free = std::find(inUse.begin(), inUse.end(), false);
  if (free == inUse.end())
    return -1;
  *free = true;
  slot = static_cast<int>(free - inUse.begin());
  peakHeld = std::max(peakHeld, ++held);
  return slot;
}

void StashSlots::release(const PipelineStep &step) {
  auto found = slotOf.find({step.chunk, step.microBatch});
  if (found == slotOf.end() || found->second < 0)
    return;
  inUse[static_cast<size_t>(found->second)] = false;
  --held;
  slotOf.erase(found);
}

} // namespace megatron::plan
