//===- Philox.cuh - Dropout's random bits, bit-exact with the CPU's ---------===//
//
// Element i of a dropout op draws word i % 4 of Philox4x32-10(counter = {i/4 low, i/4 high, stream low, stream
// high}, key = {seed low, seed high}), exactly as runtime/cpu/Philox.h, and is kept iff those bits are >= the
// threshold ceil(rate·2^32). So a mask drawn here equals the CPU backend's mask bit for bit, and a run can move
// between backends. Host-compilable: test/unit/cuda checks it against the CPU generator.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// hi and lo 32 bits of a·b.
MT_HD void mulhilo(u32 a, u32 b, u32 &hi, u32 &lo) {
  u64 product = u64(a) * u64(b);
  hi = u32(product >> 32);
  lo = u32(product);
}

/// Philox4x32-10 of one counter block; out[0..3] are the four words.
MT_HD void philoxBlock(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1, u32 out[4]) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u; // the key schedule's Weyl constants
      k1 += 0xBB67AE85u;
    }
    u32 hi0, lo0, hi1, lo1;
    mulhilo(0xD2511F53u, c0, hi0, lo0);
    mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    u32 n0 = hi1 ^ c1 ^ k0;
    u32 n2 = hi0 ^ c3 ^ k1;
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/// The four words of the block holding element indices [4·block, 4·block + 4).
MT_HD void philoxWords(u64 seed, u64 stream, u64 block, u32 out[4]) {
  philoxBlock(u32(block), u32(block >> 32), u32(stream), u32(stream >> 32), u32(seed), u32(seed >> 32), out);
}

/// The 32 random bits of full-tensor element `index`.
MT_HD u32 randomBits(u64 seed, u64 stream, u64 index) {
  u32 words[4];
  philoxWords(seed, stream, index / 4, words);
  return words[index % 4];
}

/// The full-tensor index of local element `local` of a shard made of runs of LOCAL_CHUNK consecutive elements,
/// run o starting at o·FULL_CHUNK + offset (cpu::DropoutShard). LOCAL_CHUNK = 0: not sharded.
template <u64 LOCAL_CHUNK, u64 FULL_CHUNK> MT_HD u64 fullIndex(u64 local, u64 offset) {
  if constexpr (LOCAL_CHUNK == 0)
    return local;
  else
    return local / LOCAL_CHUNK * FULL_CHUNK + offset + local % LOCAL_CHUNK;
}

} // namespace mt
