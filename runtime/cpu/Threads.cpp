//===- Threads.cpp - One thread count for OpenMP and OpenBLAS ------------------===//
//
// The kernels run on two thread pools: OpenMP's (elementwise, norms, attention's per-head work) and OpenBLAS's
// (the large GEMMs). setNumThreads keeps them the same size, so that a kernel never asks for more cores than the
// run was given.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cblas.h>

namespace megatron::cpu {

void setNumThreads(int n) {
  n = std::max(n, 1);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int numThreads() { return omp_get_max_threads(); }

namespace detail {

// openblas_set_num_threads only changes the count the next call reads (threads already created are kept), so
// switching to one thread and back is cheap. With one thread a call runs entirely in the calling thread, so
// OpenMP threads can each run their own GEMMs at once (OpenBLAS's buffer allocator is thread-safe).
SingleThreadedBlas::SingleThreadedBlas() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
SingleThreadedBlas::~SingleThreadedBlas() { openblas_set_num_threads(saved_); }

} // namespace detail
} // namespace megatron::cpu
