//===- ThreadsTest.cpp - One pool of threads, the GEMM split and the BLAS warning --===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Parallel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <random>
#include <vector>

namespace {

using namespace megatron::cpu;

struct GemmCase {
  bool transA, transB;
  Index m, n, k;
  float beta;
};

/// C = op(A)·op(B) + beta·C on `threads` threads.
std::vector<float> product(const GemmCase &c, int threads) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(c.m * c.k), b(c.k * c.n), out(c.m * c.n);
  for (float *v : {a.data(), b.data()})
    for (Index i = 0; i < (v == a.data() ? c.m * c.k : c.k * c.n); ++i)
      v[i] = dist(rng);
  for (float &v : out)
    v = dist(rng);
  Index lda = c.transA ? c.m : c.k, ldb = c.transB ? c.k : c.n;
  setNumThreads(threads);
  detail::gemm(c.transA, c.transB, c.m, c.n, c.k, 1.0f, a.data(), lda, b.data(), ldb, c.beta, out.data(), c.n);
  setNumThreads(1);
  return out;
}

// Split over a team, a product is bitwise the same from run to run (resumed runs repeat uninterrupted ones), and
// equal to the one-thread product to rounding (OpenBLAS may choose another kernel for a smaller block).
TEST(OnePool, GemmSplitIsReproducibleAndAgreesAcrossThreadCounts) {
  for (const GemmCase &c : {GemmCase{false, true, 512, 96, 128, 0.0f}, GemmCase{false, false, 256, 200, 64, 1.0f},
                            GemmCase{true, false, 160, 128, 512, 1.0f}, GemmCase{false, true, 40, 1024, 96, 0.0f},
                            GemmCase{true, true, 300, 70, 100, 0.5f}}) {
    std::vector<float> one = product(c, 1);
    for (int threads : {2, 3, 4}) {
      std::vector<float> many = product(c, threads), again = product(c, threads);
      std::string what = std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) + " on " +
                         std::to_string(threads) + " threads";
      EXPECT_EQ(std::memcmp(many.data(), again.data(), many.size() * sizeof(float)), 0) << what;
      for (size_t i = 0; i < one.size(); ++i)
        ASSERT_NEAR(many[i], one[i], 1e-5f * (1.0f + std::fabs(one[i]))) << what << ", element " << i;
    }
  }
}

TEST(OnePool, WarnsWhenOpenBlasLeavesAvx512Unused) {
  std::string forced = blasCoreWarning("Haswell", true, "Haswell");
  EXPECT_NE(forced.find("OpenBLAS runs its Haswell kernels on a CPU with AVX-512 (OPENBLAS_CORETYPE=Haswell); "
                        "unset OPENBLAS_CORETYPE"),
            std::string::npos)
      << forced;
  EXPECT_NE(blasCoreWarning("Haswell", true, nullptr).find("Haswell kernels on a CPU with AVX-512: the GEMMs"),
            std::string::npos);
  EXPECT_EQ(blasCoreWarning("SkylakeX", true, nullptr), "");
  EXPECT_EQ(blasCoreWarning("Haswell", false, "Haswell"), ""); // no AVX-512: Haswell's kernels are the right ones
  EXPECT_FALSE(blasCore().empty());
}

} // namespace
