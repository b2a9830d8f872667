//===- Threads.cpp - One pool of threads for the kernels -----------------------===//
//
// Every kernel runs on the calling thread's OpenMP team, GEMMs included: detail::gemm splits a product over the
// team and calls OpenBLAS single-threaded on each block (Gemm.cpp). OpenBLAS's own thread pool is never given
// work. Two pools (OpenMP's for the elementwise kernels, OpenBLAS's for the GEMMs) each spin while the other
// works, and on 2 cores that made 2 threads slower than 1 (docs/performance.md). With one pool, threads that run
// kernels at once (tensor-parallel ranks) each use their own team and never share a setting.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

extern "C" char *openblas_get_corename(void);

namespace megatron::cpu {

void setNumThreads(int n) {
  static std::once_flag serialBlas;
  std::call_once(serialBlas, [] { openblas_set_num_threads(1); });
  omp_set_num_threads(std::max(n, 1));
}

int numThreads() { return omp_get_max_threads(); }

std::string blasCore() { return openblas_get_corename(); }

std::string blasCoreWarning(const std::string &core, bool cpuHasAvx512, const char *coreType) {
  std::string lower = core;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  bool avx512Kernels = lower == "skylakex" || lower == "cooperlake" || lower == "sapphirerapids";
  if (!cpuHasAvx512 || avx512Kernels)
    return "";
  std::string warning = "OpenBLAS runs its " + core + " kernels on a CPU with AVX-512";
  if (coreType)
    warning += std::string(" (OPENBLAS_CORETYPE=") + coreType + "); unset OPENBLAS_CORETYPE to let it choose";
  return warning + ": the GEMMs, most of a training step, take about 45% longer (docs/performance.md)";
}

std::string blasCoreWarning() {
  return blasCoreWarning(blasCore(), __builtin_cpu_supports("avx512f"), std::getenv("OPENBLAS_CORETYPE"));
}

} // namespace megatron::cpu
