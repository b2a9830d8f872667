//===- SimulatedGemmTest.cpp - The simulator's GEMM epilogues against float64 ---===//
//
// The host simulator stands in for cuBLASLt in every device test, so its GeLU epilogues are checked on their own
// against a float64 reference: GELU_AUX(_BIAS) stores v = A·Bᵀ (+ bias) rounded once in the aux matrix and
// gelu_tanh(v) in D, DGELU stores (A·B)·gelu_tanh'(aux); in f32 within the f32 accumulation's error, in bf16
// within one rounding of the output more. The refusals mirror what CublasLtGemm refuses (cublasLt.h's aux rules).
// CudaBackendTest checks the same epilogues on a GPU.
//
//===----------------------------------------------------------------------===//

#include "GeluReference.h"
#include "DeviceValues.h"
#include "sim/SimulatedBackend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace megatron;
using test::geluTanh;
using test::geluTanhDerivative;

namespace {

cudasim::KernelLibrary &library() {
  static cudasim::KernelLibrary shared(MEGATRON_SIM_CACHE);
  return shared;
}

/// A device buffer of `count` elements of `type` holding uniform values in [-range, range] (rounded to the type).
struct Buffer {
  plan::DType type;
  std::byte *data;
  int64_t count;
  double at(int64_t i) const { return test::readDevice(type, data, i); }
};

struct Fixture {
  cudasim::SimulatedBackend backend{library(), 1};
  std::mt19937 random{11};

  Buffer buffer(plan::DType type, int64_t count, double range = 1.0) {
    std::string error;
    auto *data = static_cast<std::byte *>(backend.allocate(size_t(count) * device::deviceBytes(type) + 64, error)) + 64;
    std::uniform_real_distribution<double> uniform(-range, range);
    for (int64_t i = 0; i < count; ++i)
      test::writeDevice(type, data, i, uniform(random));
    return {type, data, count};
  }
};

/// x [m, k] · w [n, k]ᵀ (+ bias) with the GELU_AUX epilogue, and dy [m, n] · w2 [n, k2] with DGELU over that aux:
/// linear_gelu then linear_grad_input_gelu, as LinearGemms issues them.
void checkGeluEpilogues(plan::DType type, bool withBias) {
  SCOPED_TRACE(std::string(plan::toString(type)) + (withBias ? " with a bias" : ""));
  Fixture f;
  const int64_t m = 13, n = 24, k = 40;
  Buffer x = f.buffer(type, m * k), w = f.buffer(type, n * k), bias = f.buffer(type, n, 0.5);
  Buffer pre = f.buffer(type, m * n), act = f.buffer(type, m * n);
  device::Gemm g;
  g.m = m, g.n = n, g.k = k;
  g.a = {x.data, type, k, false};
  g.b = {w.data, type, k, true};
  g.c = act.data, g.cType = type, g.ldc = n;
  if (withBias)
    g.bias = bias.data, g.biasType = type;
  g.epilogue = device::GemmEpilogue::GeluAux;
  g.aux = pre.data, g.auxType = type, g.auxLd = n;
  ASSERT_EQ(f.backend.gemm(g), "");
  // f32 sums of k products below 1 in magnitude: k·2^-23 of error at most, then the stored value's rounding.
  const double ulp = type == plan::DType::F32 ? 0x1p-24 : 0x1p-8, accumulation = double(k) * 0x1p-23;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double v = withBias ? bias.at(j) : 0.0;
      for (int64_t l = 0; l < k; ++l)
        v += x.at(i * k + l) * w.at(j * k + l);
      const int64_t ij = i * n + j;
      ASSERT_NEAR(pre.at(ij), v, std::fabs(v) * ulp + accumulation) << "pre " << i << "," << j;
      ASSERT_NEAR(act.at(ij), geluTanh(v), std::fabs(geluTanh(v)) * ulp + 2 * accumulation) << "act " << i << "," << j;
    }

  // DGELU: dpre [m, n] = dy [m, k2] · w2 [k2, n], scaled by gelu'(pre).
  const int64_t k2 = 16;
  Buffer dy = f.buffer(type, m * k2), w2 = f.buffer(type, k2 * n), dpre = f.buffer(type, m * n);
  device::Gemm d;
  d.m = m, d.n = n, d.k = k2;
  d.a = {dy.data, type, k2, false};
  d.b = {w2.data, type, n, false};
  d.c = dpre.data, d.cType = type, d.ldc = n;
  d.epilogue = device::GemmEpilogue::DGelu;
  d.aux = pre.data, d.auxType = type, d.auxLd = n;
  ASSERT_EQ(f.backend.gemm(d), "");
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double product = 0.0;
      for (int64_t l = 0; l < k2; ++l)
        product += dy.at(i * k2 + l) * w2.at(l * n + j);
      const double expected = product * geluTanhDerivative(pre.at(i * n + j));
      ASSERT_NEAR(dpre.at(i * n + j), expected, std::fabs(expected) * ulp + 2 * double(k2) * 0x1p-23)
          << "dpre " << i << "," << j;
    }
}

TEST(CudaSimulatedGemm, GeluEpiloguesMatchAFloat64Reference) {
  for (plan::DType type : {plan::DType::F32, plan::DType::BF16, plan::DType::F16})
    for (bool withBias : {true, false})
      checkGeluEpilogues(type, withBias);
}

TEST(CudaSimulatedGemm, RefusesWhatCublasLtRefuses) {
  Fixture f;
  Buffer x = f.buffer(plan::DType::F32, 64 * 64), aux = f.buffer(plan::DType::F32, 64 * 64);
  device::Gemm g;
  g.m = g.k = 8;
  g.n = 12;
  g.a = {x.data, plan::DType::F32, 8, false};
  g.b = {x.data, plan::DType::F32, 12, false};
  g.c = x.data, g.ldc = 12;
  g.epilogue = device::GemmEpilogue::GeluAux;
  g.aux = aux.data, g.auxLd = 12; // not a multiple of 8
  EXPECT_NE(f.backend.gemm(g).find("divisible by 8"), std::string::npos);
  g.n = g.ldc = g.auxLd = g.b.ld = 16;
  g.auxType = plan::DType::BF16; // not D's type
  EXPECT_NE(f.backend.gemm(g).find("D's type"), std::string::npos);
  g.auxType = plan::DType::F32;
  g.epilogue = device::GemmEpilogue::DGelu;
  g.bias = x.data;
  EXPECT_NE(f.backend.gemm(g).find("takes no bias"), std::string::npos);
  EXPECT_EQ(f.backend.gemms, 0);
}

} // namespace
