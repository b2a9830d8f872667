//===- Simulator.h - Running a CUDA launch on the host -----------*- C++ -*-===//
//
// The host simulator's launch (Scheduler.cpp). The blocks of the grid run one after the other; the threads of a
// block are fibers (ucontext stacks) on the calling OS thread, resumed in passes over the block (each pass in
// another order of the warps), each running until it reaches a __syncthreads, a warp shuffle or its end. A barrier lets no thread pass before every thread of the
// block has reached it; a shuffle completes when every lane of its mask has arrived and then exchanges real
// 32-lane values. So the threads of a block interleave exactly at the points where CUDA synchronises them, and a
// kernel that depends on more (or on less) than that is caught or at least exercised, see docs/cuda.md.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_SIM_SIMULATOR_H
#define MEGATRON_TEST_UNIT_CUDA_SIM_SIMULATOR_H

#include "megatron/CodeGen/CudaKernels.h"

#include <functional>
#include <string>

namespace megatron::cudasim {

/// Runs `thread` as every CUDA thread of the launch `config` (grid and block; its dynamic shared memory must be 0).
/// Returns an empty string, or what went wrong and where: a divergent barrier (a thread exits or reaches another
/// barrier while others wait), a shuffle whose mask names a lane that is absent, has exited or shuffles elsewhere,
/// a deadlock, an invalid launch. Launches are serialised: the built-ins read one process-wide current thread.
std::string launch(const codegen::LaunchConfig &config, const std::function<void()> &thread);

/// Launches run so far and CUDA threads run so far (statistics for the test's report).
struct Counters {
  long long launches = 0;
  long long threads = 0;
  long long switches = 0;
};
Counters counters();

} // namespace megatron::cudasim

#endif // MEGATRON_TEST_UNIT_CUDA_SIM_SIMULATOR_H
