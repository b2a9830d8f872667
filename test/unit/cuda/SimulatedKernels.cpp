//===- SimulatedKernels.cpp - The test models' kernels, compiled once for the simulator ---===//

#include "SimulatedKernels.h"

#include "TestModels.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace megatron::test {

SimulatedKernels &simulatedKernels() {
  static SimulatedKernels *kernels = [] {
    auto *k = new SimulatedKernels();
    const auto start = std::chrono::steady_clock::now();
    std::vector<codegen::CudaKernel> all;
    for (const plan::Plan *plan : {&gptPlan(), &llamaPlan(), &llamaPlan(plan::DType::BF16),
                                   &llamaPlan(plan::DType::F16), &shardedGptPlan(), &shardedLlamaPlan(), &oddGptPlan(1),
                                   &oddGptPlan(2), &bertPlan(), &t5Plan(), &bertPlan(2), &t5Plan(2)}) {
      codegen::KernelSet set = codegen::generateKernels(*plan);
      all.insert(all.end(), set.kernels.begin(), set.kernels.end());
      std::vector<codegen::CudaKernel> optimizer = codegen::optimizerKernels(*plan);
      all.insert(all.end(), optimizer.begin(), optimizer.end());
    }
    k->error = k->library.load(all, int(std::max(1u, std::thread::hardware_concurrency())));
    k->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return k;
  }();
  return *kernels;
}

std::unique_ptr<cudasim::SimulatedBackend> newSimulatedBackend(std::string &error) {
  SimulatedKernels &kernels = simulatedKernels();
  if (!kernels.error.empty()) {
    error = kernels.error;
    return nullptr;
  }
  return std::make_unique<cudasim::SimulatedBackend>(kernels.library,
                                                     int(std::max(1u, std::thread::hardware_concurrency())));
}

} // namespace megatron::test
