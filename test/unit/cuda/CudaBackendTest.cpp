//===- CudaBackendTest.cpp - The GPU backend's calls, one at a time ---------------===//
//
// Without a GPU (CI) only the refusal is checked: createCudaBackend says why there is no device. With one, each
// DeviceBackend call is checked on its own before the engine tests use them together: copies both ways, fill, a
// hand-written kernel through NVRTC and cudaLaunchKernel, and every GEMM form the device engine issues (each
// operand transposed or not, f32/bf16/f16, a bias, accumulation with beta = 1, an f32 output from 16-bit inputs,
// the GeLU epilogues of --mt-fuse-elementwise's linear_gelu and linear_grad_input_gelu) against a float64 product
// of the same (rounded) inputs on the host, with operands 64-byte aligned as a plan's are. A transposition,
// leading-dimension or alignment mistake in the row-major to column-major mapping (CublasLtGemm.h) fails here by
// name.
//
//===----------------------------------------------------------------------===//

#include "GeluReference.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Device.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

using namespace megatron;
using test::geluTanh;
using test::geluTanhDerivative;

namespace {

std::unique_ptr<cuda::CudaBackend> backendOrSkip(std::string &why) {
  cuda::CudaBackendOptions options;
  options.kernelCache = testing::TempDir() + "megatron-cuda-backend-test-cache";
  return cuda::createCudaBackend(options, why);
}

#define REQUIRE_GPU(backend)                                                                                          \
  std::string why;                                                                                                    \
  std::unique_ptr<cuda::CudaBackend> backend = backendOrSkip(why);                                                    \
  if (!backend)                                                                                                       \
    GTEST_SKIP() << why;

TEST(CudaBackend, SaysWhyThereIsNoDevice) {
  std::string error;
  cuda::DeviceProbe probe = cuda::probeDevices();
  if (!probe.devices.empty())
    GTEST_SKIP() << "this machine has a GPU: " << cuda::describe(probe.devices.front());
  EXPECT_EQ(cuda::createCudaBackend({}, error), nullptr);
  EXPECT_EQ(error, probe.reason);
  EXPECT_EQ(error.rfind("no CUDA device", 0), 0u) << error;
}

TEST(CudaBackend, CopiesAndFills) {
  REQUIRE_GPU(backend);
  std::string error;
  void *device = backend->allocate(4096, error);
  ASSERT_NE(device, nullptr) << error;
  std::vector<unsigned char> host(4096), back(4096);
  for (size_t i = 0; i < host.size(); ++i)
    host[i] = static_cast<unsigned char>(i * 7 + 3);
  ASSERT_EQ(backend->copyToDevice(device, host.data(), host.size()), "");
  void *other = backend->allocate(4096, error);
  ASSERT_EQ(backend->copyOnDevice(other, device, 4096), "");
  ASSERT_EQ(backend->fill(static_cast<char *>(other) + 1000, 0xab, 24), "");
  ASSERT_EQ(backend->copyToHost(back.data(), other, back.size()), "");
  for (size_t i = 0; i < host.size(); ++i)
    ASSERT_EQ(back[i], i >= 1000 && i < 1024 ? 0xab : host[i]) << i;
  backend->release(device);
  backend->release(other);
}

TEST(CudaBackend, CompilesAndLaunchesAKernel) {
  REQUIRE_GPU(backend);
  codegen::CudaKernel kernel;
  kernel.name = "mt_test_axpy";
  kernel.source = "extern \"C\" __global__ void mt_test_axpy(float a, const float *x, float *y, int n) {\n"
                  "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                  "  if (i < n) y[i] += a * x[i];\n"
                  "}\n";
  kernel.launch.grid[0] = 4;
  kernel.launch.block[0] = 256;
  ASSERT_EQ(backend->prepare({kernel}), "");
  ASSERT_EQ(backend->prepare({kernel}), ""); // prepared once
  EXPECT_EQ(backend->kernelsCompiled() + backend->kernelsFromCache(), 1);

  const int n = 1000;
  std::vector<float> x(n), y(n), result(n);
  for (int i = 0; i < n; ++i)
    x[size_t(i)] = float(i), y[size_t(i)] = 1.0f;
  std::string error;
  float *dx = static_cast<float *>(backend->allocate(n * 4, error));
  float *dy = static_cast<float *>(backend->allocate(n * 4, error));
  ASSERT_EQ(backend->copyToDevice(dx, x.data(), n * 4), "");
  ASSERT_EQ(backend->copyToDevice(dy, y.data(), n * 4), "");
  float a = 0.5f;
  int count = n;
  void *args[] = {&a, &dx, &dy, &count};
  ASSERT_EQ(backend->launch(kernel, args), "");
  ASSERT_EQ(backend->copyToHost(result.data(), dy, n * 4), "");
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(result[size_t(i)], 1.0f + 0.5f * float(i)) << i;
  backend->release(dx);
  backend->release(dy);

  codegen::CudaKernel unknown = kernel;
  unknown.name = "mt_test_not_prepared";
  EXPECT_NE(backend->launch(unknown, args).find("was not prepared"), std::string::npos);
}

// Markers (CUDA events) recorded around a kernel that spins for a million clock cycles: the time between them is
// the kernel's, read without a synchronize of the stream; a marker is reused for a second span; a pair of which
// one was never recorded is an error, not a number.
TEST(CudaBackend, TimesTheStreamBetweenTwoMarkers) {
  REQUIRE_GPU(backend);
  codegen::CudaKernel kernel;
  kernel.name = "mt_test_spin";
  kernel.source = "extern \"C\" __global__ void mt_test_spin(long long cycles) {\n"
                  "  long long start = clock64();\n"
                  "  while (clock64() - start < cycles) {}\n"
                  "}\n";
  kernel.launch.grid[0] = 1;
  kernel.launch.block[0] = 32;
  ASSERT_EQ(backend->prepare({kernel}), "");
  device::TimingMarker *start = nullptr, *end = nullptr, *never = nullptr;
  ASSERT_EQ(backend->createMarker(start), "");
  ASSERT_EQ(backend->createMarker(end), "");
  ASSERT_EQ(backend->createMarker(never), "");
  long long cycles = 1'000'000;
  void *args[] = {&cycles};
  ASSERT_EQ(backend->recordMarker(start), "");
  ASSERT_EQ(backend->launch(kernel, args), "");
  ASSERT_EQ(backend->recordMarker(end), "");
  double spin = -1;
  ASSERT_EQ(backend->elapsedMilliseconds(start, end, spin), "");
  std::printf("  a million cycles: %.4f ms between the markers\n", spin);
  EXPECT_GT(spin, 0.0);
  EXPECT_LT(spin, 1000.0);
  ASSERT_EQ(backend->recordMarker(start), ""); // reused: an empty span
  ASSERT_EQ(backend->recordMarker(end), "");
  double empty = -1;
  ASSERT_EQ(backend->elapsedMilliseconds(start, end, empty), "");
  EXPECT_GE(empty, 0.0);
  EXPECT_LT(empty, spin);
  double unused = 0;
  EXPECT_NE(backend->elapsedMilliseconds(never, end, unused), "");
  backend->destroyMarker(start);
  backend->destroyMarker(end);
  backend->destroyMarker(never);
}

TEST(CudaBackend, ReportsACompileErrorWithTheKernelsName) {
  REQUIRE_GPU(backend);
  codegen::CudaKernel kernel;
  kernel.name = "mt_test_broken";
  kernel.source = "extern \"C\" __global__ void mt_test_broken() { undeclared(); }\n";
  const std::string error = backend->prepare({kernel});
  EXPECT_NE(error.find("mt_test_broken"), std::string::npos) << error;
}

/// Values of `type` stored on the device (two bytes for bf16/f16) and the exact values they hold, as doubles.
struct Matrix {
  plan::DType type;
  std::vector<unsigned char> bytes;
  std::vector<double> values;
};

Matrix randomMatrix(plan::DType type, int64_t count, std::mt19937 &random) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  Matrix m{type, {}, std::vector<double>(size_t(count))};
  const size_t width = type == plan::DType::F32 ? 4 : 2;
  m.bytes.resize(size_t(count) * width);
  for (int64_t i = 0; i < count; ++i) {
    float v = uniform(random);
    if (type == plan::DType::BF16)
      v = cpu::roundToBf16(v);
    else if (type == plan::DType::F16)
      v = cpu::roundToF16(v);
    m.values[size_t(i)] = v;
    if (width == 4) {
      std::memcpy(&m.bytes[size_t(i) * 4], &v, 4);
    } else if (type == plan::DType::BF16) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      const uint16_t upper = uint16_t(bits >> 16); // exact: v is a bf16 value
      std::memcpy(&m.bytes[size_t(i) * 2], &upper, 2);
    } else {
      const _Float16 half = static_cast<_Float16>(v); // exact: v is an f16 value
      std::memcpy(&m.bytes[size_t(i) * 2], &half, 2);
    }
  }
  return m;
}

double readBack(plan::DType type, const std::vector<unsigned char> &bytes, size_t i) {
  if (type == plan::DType::F32) {
    float v;
    std::memcpy(&v, &bytes[i * 4], 4);
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, &bytes[i * 2], 2);
  if (type == plan::DType::BF16) {
    const uint32_t wide = uint32_t(bits) << 16;
    float v;
    std::memcpy(&v, &wide, 4);
    return v;
  }
  _Float16 half;
  std::memcpy(&half, &bits, 2);
  return double(half);
}

struct GemmCase {
  plan::DType input, output;
  bool transposeA, transposeB, bias;
  float beta;
  device::GemmEpilogue epilogue = device::GemmEpilogue::None;
};

/// One product on the device against float64 on the host: D = op(A)·op(B) (+ bias) (+ beta·D), and with a GeLU
/// epilogue D = gelu(v) with aux = v (GELU_AUX[_BIAS]), or D = v·gelu'(aux) for a given aux (DGELU).
void checkGemm(cuda::CudaBackend &backend, const GemmCase &c) {
  const bool geluAux = c.epilogue == device::GemmEpilogue::GeluAux;
  const bool dgelu = c.epilogue == device::GemmEpilogue::DGelu;
  SCOPED_TRACE(std::string(plan::toString(c.input)) + "→" + plan::toString(c.output) +
               (c.transposeA ? " Aᵀ" : " A") + (c.transposeB ? " Bᵀ" : " B") + (c.bias ? " +bias" : "") +
               (c.beta != 0 ? " +D" : "") + (geluAux ? " gelu_aux" : dgelu ? " dgelu" : ""));
  const int64_t m = 67, n = 96, k = 80; // odd m: no dimension is a multiple of every tile
  std::mt19937 random(7);
  Matrix a = randomMatrix(c.input, m * k, random), b = randomMatrix(c.input, k * n, random);
  Matrix bias = randomMatrix(c.output, n, random), d = randomMatrix(c.output, m * n, random);
  Matrix aux = randomMatrix(c.output, m * n, random); // DGELU's pre-activation; GELU_AUX overwrites it
  auto at = [&](const Matrix &x, bool transposed, int64_t rows, int64_t cols, int64_t r, int64_t col) {
    // op(X)[r, col] of a row-major X stored [rows, cols] (or [cols, rows] when transposed)
    return transposed ? x.values[size_t(col * rows + r)] : x.values[size_t(r * cols + col)];
  };
  std::vector<double> product(size_t(m * n)), expected(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += at(a, c.transposeA, m, k, i, p) * at(b, c.transposeB, k, n, p, j);
      const size_t ij = size_t(i * n + j);
      product[ij] = sum + (c.bias ? bias.values[size_t(j)] : 0) + c.beta * d.values[ij];
      expected[ij] = geluAux ? geluTanh(product[ij])
                     : dgelu ? product[ij] * geluTanhDerivative(aux.values[ij])
                             : product[ij];
    }

  // Each operand 64 bytes into its allocation: a plan's buffers are 64-byte aligned, not the 256 bytes cuBLASLt's
  // heuristic assumes unless told (CublasLtGemm passes the real alignment).
  std::string error;
  std::vector<void *> allocations;
  auto upload = [&](const Matrix &x) {
    char *base = static_cast<char *>(backend.allocate(x.bytes.size() + 64, error));
    allocations.push_back(base);
    EXPECT_EQ(backend.copyToDevice(base + 64, x.bytes.data(), x.bytes.size()), "");
    return static_cast<void *>(base + 64);
  };
  void *da = upload(a), *db = upload(b), *dbias = upload(bias), *dd = upload(d), *daux = upload(aux);
  device::Gemm g;
  g.m = m, g.n = n, g.k = k;
  g.a = {da, c.input, c.transposeA ? m : k, c.transposeA};
  g.b = {db, c.input, c.transposeB ? k : n, c.transposeB};
  g.c = dd;
  g.cType = c.output;
  g.ldc = n;
  g.beta = c.beta;
  if (c.bias)
    g.bias = dbias, g.biasType = c.output;
  if (c.epilogue != device::GemmEpilogue::None)
    g.epilogue = c.epilogue, g.aux = daux, g.auxType = c.output, g.auxLd = n;
  ASSERT_EQ(backend.gemm(g), "");                                       // builds the shape
  ASSERT_EQ(backend.copyToDevice(dd, d.bytes.data(), d.bytes.size()), ""); // D as it was
  ASSERT_EQ(backend.gemm(g), "");                                       // the cached shape
  std::vector<unsigned char> out(d.bytes.size()), auxOut(aux.bytes.size());
  ASSERT_EQ(backend.copyToHost(out.data(), dd, out.size()), "");
  ASSERT_EQ(backend.copyToHost(auxOut.data(), daux, auxOut.size()), "");
  // f32 accumulation of k products of values below 1: a few ulps of f32 at the sum's magnitude, plus the output's
  // own rounding. The GeLU epilogues add cuBLASLt's tanh, whose evaluation cublasLt.h does not document: allowed
  // the error of PTX's tanh.approx.f32 (2^-10.987 relative) on top, scaled by the value.
  const double outputUlp = c.output == plan::DType::F32 ? 0x1p-23 : c.output == plan::DType::BF16 ? 0x1p-8 : 0x1p-11;
  const double accumulation = double(k) * 0x1p-22;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double got = readBack(c.output, out, i);
    const double tanhError = geluAux ? 0x1p-11 * std::fabs(product[i]) : dgelu ? 0x1p-10 * std::fabs(product[i]) : 0;
    ASSERT_NEAR(got, expected[i], std::fabs(expected[i]) * outputUlp + accumulation + tanhError) << "element " << i;
    if (geluAux) // the aux matrix holds v itself, rounded once to its type
      ASSERT_NEAR(readBack(c.output, auxOut, i), product[i], std::fabs(product[i]) * outputUlp + accumulation)
          << "aux element " << i;
    else // DGELU only reads it, and the plain GEMM leaves it alone
      ASSERT_EQ(readBack(c.output, auxOut, i), aux.values[i]) << "aux element " << i;
  }
  for (void *p : allocations)
    backend.release(p);
}

TEST(CudaBackend, GemmsMatchAFloat64ProductInEveryForm) {
  REQUIRE_GPU(backend);
  const plan::DType f32 = plan::DType::F32, bf16 = plan::DType::BF16, f16 = plan::DType::F16;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (plan::DType type : {f32, bf16, f16}) {
        checkGemm(*backend, {type, type, ta, tb, false, 0.0f});
        checkGemm(*backend, {type, type, ta, tb, true, 0.0f});
      }
  // What the plans issue: linear_grad_input accumulating (beta 1), and the f32 weight gradient accumulated from
  // 16-bit activations (mixed precision's gradient-accumulation fusion).
  checkGemm(*backend, {f32, f32, false, false, false, 1.0f});
  checkGemm(*backend, {bf16, f32, true, false, false, 1.0f});
  checkGemm(*backend, {f16, f32, true, false, false, 1.0f});
}

// --mt-fuse-elementwise's GEMMs: linear_gelu (GELU_AUX_BIAS, and GELU_AUX without a bias: x·Wᵀ, B transposed) and
// linear_grad_input_gelu (DGELU: dy·W) in each storage type, with the aux matrix 64-byte aligned like D.
TEST(CudaBackend, GeluEpiloguesMatchAFloat64Reference) {
  REQUIRE_GPU(backend);
  for (plan::DType type : {plan::DType::F32, plan::DType::BF16, plan::DType::F16}) {
    checkGemm(*backend, {type, type, false, true, true, 0.0f, device::GemmEpilogue::GeluAux});
    checkGemm(*backend, {type, type, false, true, false, 0.0f, device::GemmEpilogue::GeluAux});
    checkGemm(*backend, {type, type, false, false, false, 0.0f, device::GemmEpilogue::DGelu});
  }
}

// What cublasLt.h rules out of the GeLU epilogues is refused by name before cuBLASLt is asked (the compiler does
// not fuse these: passes/FuseElementwise.cpp).
TEST(CudaBackend, RefusesAGeluEpilogueCublasLtCannotRun) {
  REQUIRE_GPU(backend);
  std::string error;
  void *memory = backend->allocate(1 << 16, error);
  ASSERT_NE(memory, nullptr) << error;
  device::Gemm g;
  g.m = g.k = 8;
  g.n = 12;
  g.a = {memory, plan::DType::F32, 8, false};
  g.b = {memory, plan::DType::F32, 12, false};
  g.c = memory;
  g.ldc = 12;
  g.epilogue = device::GemmEpilogue::GeluAux;
  g.aux = memory;
  g.auxLd = 12; // not a multiple of 8
  EXPECT_NE(backend->gemm(g).find("divisible by 8"), std::string::npos);
  g.n = g.ldc = g.auxLd = 16;
  g.b.ld = 16;
  g.epilogue = device::GemmEpilogue::DGelu;
  g.bias = memory;
  EXPECT_NE(backend->gemm(g).find("takes no bias"), std::string::npos);
  backend->release(memory);
}

TEST(CudaBackend, RefusesMixedInputTypesByShape) {
  REQUIRE_GPU(backend);
  device::Gemm g;
  g.m = g.n = g.k = 8;
  g.a = {nullptr, plan::DType::BF16, 8, false};
  g.b = {nullptr, plan::DType::F32, 8, false};
  g.cType = plan::DType::F32;
  g.ldc = 8;
  const std::string error = backend->gemm(g);
  EXPECT_NE(error.find("one type"), std::string::npos) << error;
  EXPECT_NE(error.find("m=8 n=8 k=8"), std::string::npos) << error;
}

} // namespace
