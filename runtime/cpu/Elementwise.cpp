//===- Elementwise.cpp - Residual add, gradient fan-in, scaling, copies --------===//
//
// Memory-bound loops: the baseline SSE2 code already saturates memory bandwidth, so these are plain OpenMP loops
// (no instruction-set clones). Each element is written by one thread, so results never depend on threads.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cstring>

namespace megatron::cpu {

using namespace detail;

template <typename T> void add(Index n, const T *a, const T *b, T *out) {
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

template <typename T> void accumulate(Index n, const T *src, T *dst) {
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index i = 0; i < n; ++i)
    dst[i] += src[i];
}

template <typename T> void scale(Index n, T factor, T *x) {
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index i = 0; i < n; ++i)
    x[i] *= factor;
}

template <typename T> void copy(Index n, const T *src, T *dst) {
  if (n > 0)
    std::memcpy(dst, src, std::size_t(n) * sizeof(T));
}

template <typename T> void fillZero(Index n, T *x) {
  if (n > 0)
    std::memset(x, 0, std::size_t(n) * sizeof(T));
}

template <typename T> void fill(Index n, T value, T *x) {
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (Index i = 0; i < n; ++i)
    x[i] = value;
}

#define INSTANTIATE(T)                                                                                                \
  template void add<T>(Index, const T *, const T *, T *);                                                            \
  template void accumulate<T>(Index, const T *, T *);                                                                \
  template void scale<T>(Index, T, T *);                                                                             \
  template void copy<T>(Index, const T *, T *);                                                                      \
  template void fillZero<T>(Index, T *);                                                                             \
  template void fill<T>(Index, T, T *);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace megatron::cpu
