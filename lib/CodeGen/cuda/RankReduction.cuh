//===- RankReduction.cuh - Several ranks' buffers reduced in rank order --------===//
//
// The same-device communicator's reduction (runtime/device/SameDeviceCommunicator.h): every rank's buffer lives
// on one device, and one kernel reads all of them. Element i of each destination becomes
// src[0][i] op src[1][i] op ... op src[n-1][i], left to right, with runtime/comm/Reduction.cpp's semantics: f32
// arithmetic for f32, bf16 and f16 (a 16-bit result is rounded once, when it is stored, as the CPU engine rounds a
// step's 16-bit output once), f64 for f64, wrap-around integer sums, and a NaN wins a max. Every thread reads all
// sources of its element before it writes any destination, so a destination may be one of the sources.
//
//===----------------------------------------------------------------------===//

namespace mt {

/// The buffers of a reduction's ranks, passed by value as one kernel parameter.
constexpr int kMaxReduceRanks = 16;
struct RankPointers {
  const void *at[kMaxReduceRanks];
};

/// How one storage type is accumulated.
template <typename T> struct RankAccumulator {
  typedef typename Compute<T>::type C;
  static MT_DEVICE C read(const void *p, i64 i) { return load(static_cast<const T *>(p) + i); }
  static MT_DEVICE void write(const void *p, i64 i, C v) { store(const_cast<T *>(static_cast<const T *>(p)) + i, v); }
  static MT_DEVICE C add(C a, C b) { return a + b; }
  static MT_DEVICE C max(C a, C b) { return (a > b || a != a) ? a : b; }
};
template <typename T, typename U> struct IntegerAccumulator {
  typedef T C;
  static MT_DEVICE C read(const void *p, i64 i) { return static_cast<const T *>(p)[i]; }
  static MT_DEVICE void write(const void *p, i64 i, C v) { const_cast<T *>(static_cast<const T *>(p))[i] = v; }
  static MT_DEVICE C add(C a, C b) { return C(U(a) + U(b)); } // wraps around
  static MT_DEVICE C max(C a, C b) { return a > b ? a : b; }
};
template <> struct RankAccumulator<int> : IntegerAccumulator<int, unsigned> {};
template <> struct RankAccumulator<long long> : IntegerAccumulator<long long, unsigned long long> {};

template <typename T, bool MAX>
MT_DEVICE void reduceRanks(RankPointers sources, RankPointers destinations, int ranks, int destinationCount, i64 n) {
  typedef RankAccumulator<T> A;
  for (i64 i = globalThread(); i < n; i += gridStride()) {
    typename A::C acc = A::read(sources.at[0], i);
    for (int r = 1; r < ranks; ++r) {
      const typename A::C value = A::read(sources.at[r], i);
      acc = MAX ? A::max(acc, value) : A::add(acc, value);
    }
    for (int d = 0; d < destinationCount; ++d)
      A::write(destinations.at[d], i, acc);
  }
}

} // namespace mt
