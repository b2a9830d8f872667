//===- Heads.cuh - Megatron's fused QKV / KV layouts to separate heads and back ===//
//
// runtime/cpu/Heads.cpp's layout: per token, per group g, its PER query heads, then its key head, then its value
// head, each of D channels (PER = 0: the fused KV of cross-attention). One thread per element of the fused row;
// SPLIT copies fused → q, k, v, otherwise q, k, v → fused (the backward).
//
//===----------------------------------------------------------------------===//

namespace mt {

template <typename F, typename H, i64 TOKENS, i64 HEADS, i64 GROUPS, i64 PER, i64 D, bool SPLIT>
MT_DEVICE void shuffleHeads(F *fused, H *q, H *k, H *v) {
  constexpr i64 GROUP = (PER + 2) * D, ROW = GROUPS * GROUP;
  for (i64 i = globalThread(); i < TOKENS * ROW; i += gridStride()) {
    const i64 t = i / ROW, g = i % ROW / GROUP, slot = i % GROUP / D, c = i % D;
    H *head = slot < PER    ? q + (t * HEADS + g * PER + slot) * D + c
              : slot == PER ? k + (t * GROUPS + g) * D + c
                            : v + (t * GROUPS + g) * D + c;
    if (SPLIT)
      store(head, load(fused + i));
    else
      store(fused + i, load(head));
  }
}

} // namespace mt
