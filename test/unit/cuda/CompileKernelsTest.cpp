//===- CompileKernelsTest.cpp - NVRTC compiles every generated kernel ---------===//
//
// The test that matters without a GPU: every kernel the generator emits for the test models (the GPT, the
// LLaMA-style model in f32, bf16 and f16, BERT, T5 with its relative position bias, the sharded GPT's
// vocabulary-parallel loss), every optimizer kernel and the same-device communicator's reductions compile with NVRTC to PTX for
// compute_90 and to a CUBIN for sm_90 (H100). A failure prints the kernel's name and NVRTC's log. The kernels go
// through a fresh KernelCache, so the second architecture pass also checks that entries read back.
//
//===----------------------------------------------------------------------===//

#include "TestModels.h"
#include "UniqueTempDir.h"

#include "megatron/CodeGen/CudaKernels.h"
#include "runtime/cuda/KernelCache.h"

#include <atomic>
#include <filesystem>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

using namespace megatron;
using namespace megatron::codegen;

namespace {

std::vector<CudaKernel> everyKernel() {
  std::vector<CudaKernel> all;
  for (const plan::Plan &plan : {test::gptPlan(), test::gptPlan(plan::DType::BF16), test::llamaPlan(), test::bertPlan(),
                                 test::t5Plan(), test::t5Plan(2), test::llamaPlan(plan::DType::BF16),
                                 test::llamaPlan(plan::DType::F16), test::shardedGptPlan()}) {
    KernelSet set = generateKernels(plan);
    all.insert(all.end(), set.kernels.begin(), set.kernels.end());
    std::vector<CudaKernel> optimizer = optimizerKernels(plan);
    all.insert(all.end(), optimizer.begin(), optimizer.end());
  }
  // The same-device communicator's reductions, of every type, both ops and both grids.
  for (plan::DType type : {plan::DType::F32, plan::DType::F64, plan::DType::BF16, plan::DType::F16, plan::DType::I32,
                           plan::DType::I64})
    for (bool max : {false, true})
      for (int64_t elements : {int64_t(1), kSmallRankReduction + 1})
        all.push_back(rankReductionKernel(type, max, elements));
  // Kernels shared by the models (same name, same source) are compiled once.
  std::sort(all.begin(), all.end(), [](const CudaKernel &a, const CudaKernel &b) { return a.name < b.name; });
  all.erase(std::unique(all.begin(), all.end(),
                        [](const CudaKernel &a, const CudaKernel &b) { return a.name == b.name; }),
            all.end());
  return all;
}

struct Failure {
  std::string name, error;
};

/// Compiles every kernel on two threads (NVRTC and the cache are thread-safe; CI's machines have two cores).
std::vector<Failure> compileAll(const std::vector<CudaKernel> &kernels, cuda::KernelCache &cache,
                                const cuda::CompileOptions &options, int &checkedCode) {
  std::vector<Failure> failures;
  std::mutex mutex;
  std::atomic<size_t> next{0};
  std::atomic<int> checked{0};
  auto work = [&] {
    for (size_t i = next++; i < kernels.size(); i = next++) {
      std::string error;
      std::optional<std::string> code = cache.compile(kernels[i].name, kernels[i].source, options, error);
      std::lock_guard<std::mutex> lock(mutex);
      if (!code) {
        failures.push_back({kernels[i].name, error});
        continue;
      }
      // PTX declares the entry point; a CUBIN is an ELF image.
      bool ok = options.kind == cuda::CodeKind::Ptx ? code->find(".entry " + kernels[i].name) != std::string::npos
                                                    : code->rfind("\x7f" "ELF", 0) == 0;
      if (ok)
        ++checked;
      else
        failures.push_back({kernels[i].name, "the compiled code is not a " + cuda::archName(options) + " image"});
    }
  };
  std::thread helper(work);
  work();
  helper.join();
  checkedCode = checked;
  return failures;
}

TEST(CudaCompile, EveryGeneratedKernelCompilesForSm90) {
  if (!cuda::haveNvrtc())
    GTEST_SKIP() << "built without the CUDA toolkit: NVRTC is not available, nothing to compile";
  std::vector<CudaKernel> kernels = everyKernel();
  ASSERT_GT(kernels.size(), 40u);
  std::filesystem::path dir = test::uniqueTempDir("megatron-compile-kernels-test");
  cuda::KernelCache cache(dir.string());
  for (cuda::CodeKind kind : {cuda::CodeKind::Ptx, cuda::CodeKind::Cubin}) {
    cuda::CompileOptions options{90, kind, {}};
    int checked = 0;
    for (const Failure &failure : compileAll(kernels, cache, options, checked))
      ADD_FAILURE() << failure.name << " for " << cuda::archName(options) << ":\n" << failure.error;
    EXPECT_EQ(size_t(checked), kernels.size()) << cuda::archName(options);
  }
  EXPECT_EQ(cache.writeFailures(), 0) << cache.lastWriteError();
  // Every entry reads back: a second pass over the cache compiles nothing.
  cuda::KernelCache again(dir.string());
  for (const CudaKernel &kernel : kernels) {
    std::string error;
    again.compile(kernel.name, kernel.source, {90, cuda::CodeKind::Cubin, {}}, error);
  }
  EXPECT_EQ(again.hits(), int(kernels.size()));
  EXPECT_EQ(again.misses(), 0);
  std::printf("compiled %zu kernels to compute_90 PTX and sm_90 CUBIN\n", kernels.size());
  std::filesystem::remove_all(dir);
}

} // namespace
