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

#include <atomic>

namespace megatron::cpu {

namespace {
// Process-wide: how many threads run kernels at once, and the OpenBLAS thread count the last setNumThreads asked
// for (restored when the ranks are done).
std::atomic<int> ranksRunning{1};
std::atomic<int> blasThreads{0};
} // namespace

void setNumThreads(int n) {
  n = std::max(n, 1);
  omp_set_num_threads(n);
  if (ranksRunning.load() > 1)
    return; // a rank's own team; OpenBLAS stays on one thread until the ranks are done
  blasThreads = n;
  openblas_set_num_threads(n);
}

int numThreads() { return omp_get_max_threads(); }

void setConcurrentRanks(int ranks) {
  ranks = std::max(ranks, 1);
  ranksRunning = ranks;
  if (ranks > 1)
    openblas_set_num_threads(1);
  else if (blasThreads.load() > 0)
    openblas_set_num_threads(blasThreads.load());
}

int concurrentRanks() { return ranksRunning.load(); }

namespace detail {

// openblas_set_num_threads only changes the count the next call reads (threads already created are kept), so
// switching to one thread and back is cheap. With one thread a call runs entirely in the calling thread, so
// OpenMP threads can each run their own GEMMs at once (OpenBLAS's buffer allocator is thread-safe). Under
// setConcurrentRanks(> 1) OpenBLAS already stays on one thread and the count is shared by every rank's thread,
// so the scope leaves it alone (saving and restoring it from several ranks at once would race).
SingleThreadedBlas::SingleThreadedBlas() : saved_(0) {
  if (ranksRunning.load() > 1)
    return;
  saved_ = openblas_get_num_threads();
  openblas_set_num_threads(1);
}
SingleThreadedBlas::~SingleThreadedBlas() {
  if (saved_ > 0)
    openblas_set_num_threads(saved_);
}

} // namespace detail
} // namespace megatron::cpu
