//===- NvrtcTest.cpp - Compiling CUDA C++ with NVRTC, and its errors ------------===//

#include "runtime/cuda/Nvrtc.h"

#include <gtest/gtest.h>

using namespace megatron::cuda;

namespace {

TEST(Nvrtc, CompilesToPtxAndCubinForSm90WithBf16) {
  if (!haveNvrtc())
    GTEST_SKIP() << "built without the CUDA toolkit: no NVRTC";
  const std::string source = "#include <cuda_bf16.h>\n"
                             "extern \"C\" __global__ void mt_widen(const __nv_bfloat16 *x, float *y) {\n"
                             "  y[threadIdx.x] = __bfloat162float(x[threadIdx.x]);\n}\n";
  std::string error;
  std::optional<std::string> ptx = compileKernel("mt_widen", source, {90, CodeKind::Ptx, {}}, error);
  ASSERT_TRUE(ptx) << error;
  EXPECT_NE(ptx->find(".target sm_90"), std::string::npos);
  EXPECT_NE(ptx->find(".entry mt_widen"), std::string::npos);
  std::optional<std::string> cubin = compileKernel("mt_widen", source, {90, CodeKind::Cubin, {}}, error);
  ASSERT_TRUE(cubin) << error;
  EXPECT_EQ(cubin->rfind("\x7f" "ELF", 0), 0u);
  EXPECT_FALSE(nvrtcVersion().empty());
}

TEST(Nvrtc, ABrokenKernelNamesItselfAndCarriesTheLog) {
  const std::string source = "extern \"C\" __global__ void mt_broken(float *x) { x[0] = undeclared_value; }\n";
  std::string error;
  EXPECT_FALSE(compileKernel("mt_broken", source, {90, CodeKind::Cubin, {}}, error));
  if (!haveNvrtc()) {
    EXPECT_NE(error.find("this build has no NVRTC"), std::string::npos) << error;
    return;
  }
  EXPECT_EQ(error.rfind("NVRTC could not compile kernel 'mt_broken' for sm_90 (NVRTC_ERROR_COMPILATION):\n", 0), 0u)
      << error;
  EXPECT_NE(error.find("undeclared_value"), std::string::npos) << error;
  EXPECT_NE(error.find("mt_broken.cu"), std::string::npos) << "the log names the kernel's file: " << error;
}

TEST(Nvrtc, OptionsNameTheArchitectureAndTheToolkitHeaders) {
  std::vector<std::string> options = nvrtcOptions({90, CodeKind::Ptx, {"-lineinfo"}});
  ASSERT_GE(options.size(), 3u);
  EXPECT_EQ(options.front(), "--gpu-architecture=compute_90");
  EXPECT_EQ(options.back(), "-lineinfo");
  EXPECT_EQ(archName({90, CodeKind::Cubin, {}}), "sm_90");
  if (haveNvrtc()) {
    EXPECT_NE(options[2].find("--include-path="), std::string::npos);
  }
}

} // namespace
