//===- SimulatedBackend.cpp - The host simulator as a DeviceBackend ---===//

#include "SimulatedBackend.h"

#include "test/unit/cuda/DeviceValues.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace megatron::cudasim {

using test::readDevice;
using test::writeDevice;

namespace {

bool gemmType(plan::DType dtype) {
  return dtype == plan::DType::F32 || dtype == plan::DType::BF16 || dtype == plan::DType::F16;
}

/// Element (row, column) of op(X) for a row-major X with leading dimension ld.
double element(const device::GemmOperand &x, int64_t row, int64_t column) {
  const int64_t at = x.transposed ? column * x.ld + row : row * x.ld + column;
  return readDevice(x.dtype, static_cast<const std::byte *>(x.data), at);
}

/// cuBLASLt's GeLU epilogues on an f32 value: the tanh form and its derivative, in f32 (the formulas of
/// lib/CodeGen/cuda/Activations.cuh).
float geluTanh(float v) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f; // √(2/π) and the cubic coefficient
  return 0.5f * v * (1.0f + std::tanh(k0 * (v + k1 * v * v * v)));
}

float geluTanhDerivative(float v) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  const float t = std::tanh(k0 * (v + k1 * v * v * v));
  return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * k0 * (1.0f + 3.0f * k1 * v * v);
}

} // namespace

SimulatedBackend::~SimulatedBackend() {
  for (const auto &[memory, bytes] : allocations)
    std::free(const_cast<std::byte *>(memory));
  for (const auto &[marker, at] : markers)
    delete reinterpret_cast<const char *>(marker);
}

bool SimulatedBackend::owns(const void *memory, std::size_t bytes) const {
  const auto *p = static_cast<const std::byte *>(memory);
  auto after = allocations.upper_bound(p);
  if (after == allocations.begin())
    return false;
  const auto &[base, size] = *std::prev(after);
  return p + bytes <= base + size;
}

void *SimulatedBackend::allocate(std::size_t bytes, std::string &error) {
  void *memory = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!memory) {
    error = "out of host memory";
    return nullptr;
  }
  // Fresh device memory holds whatever was there before: NaN bytes, so that reading unwritten memory shows.
  std::memset(memory, 0xff, bytes);
  allocations[static_cast<const std::byte *>(memory)] = bytes;
  return memory;
}

void SimulatedBackend::release(void *memory) {
  if (allocations.erase(static_cast<const std::byte *>(memory)))
    std::free(memory);
}

// A marker is a distinct address (one byte of the host heap) naming its entry in `markers`.
std::string SimulatedBackend::createMarker(device::TimingMarker *&marker) {
  marker = reinterpret_cast<device::TimingMarker *>(new char);
  markers.emplace(marker, std::nullopt);
  return {};
}

void SimulatedBackend::destroyMarker(device::TimingMarker *marker) {
  if (markers.erase(marker))
    delete reinterpret_cast<char *>(marker);
}

std::string SimulatedBackend::recordMarker(device::TimingMarker *marker) {
  auto found = markers.find(marker);
  if (found == markers.end())
    return "recordMarker on a marker that was not made by this backend";
  found->second = std::chrono::steady_clock::now();
  return {};
}

std::string SimulatedBackend::elapsedMilliseconds(device::TimingMarker *start, device::TimingMarker *end,
                                                  double &milliseconds) {
  auto from = markers.find(start), to = markers.find(end);
  if (from == markers.end() || to == markers.end())
    return "elapsedMilliseconds on a marker that was not made by this backend";
  if (!from->second || !to->second)
    return std::string("elapsedMilliseconds: the ") + (!from->second ? "start" : "end") +
           " marker was never recorded";
  milliseconds = std::chrono::duration<double, std::milli>(*to->second - *from->second).count();
  return {};
}

std::string SimulatedBackend::copyToDevice(void *device, const void *host, std::size_t bytes) {
  if (!owns(device, bytes))
    return "copyToDevice to memory that was not allocated on the device";
  ++hostCopies;
  std::memcpy(device, host, bytes);
  return {};
}

std::string SimulatedBackend::copyToHost(void *host, const void *device, std::size_t bytes) {
  if (!owns(device, bytes))
    return "copyToHost from memory that was not allocated on the device";
  ++hostCopies;
  std::memcpy(host, device, bytes);
  return {};
}

std::string SimulatedBackend::copyOnDevice(void *destination, const void *source, std::size_t bytes) {
  if (!owns(destination, bytes) || !owns(source, bytes))
    return "copyOnDevice between memory that was not allocated on the device";
  std::memmove(destination, source, bytes);
  return {};
}

std::string SimulatedBackend::fill(void *device, unsigned char value, std::size_t bytes) {
  if (!owns(device, bytes))
    return "fill of memory that was not allocated on the device";
  std::memset(device, value, bytes);
  return {};
}

std::string SimulatedBackend::prepare(const std::vector<codegen::CudaKernel> &kernels) {
  return library.load(kernels, jobs);
}

std::string SimulatedBackend::launch(const codegen::CudaKernel &kernel, void **args) {
  ++launches;
  return library.launch(kernel, args);
}

std::string SimulatedBackend::gemm(const device::Gemm &g) {
  const bool usesAux = g.epilogue != device::GemmEpilogue::None;
  if (!gemmType(g.a.dtype) || !gemmType(g.b.dtype) || !gemmType(g.cType) || (g.bias && !gemmType(g.biasType)))
    return "a GEMM takes f32, bf16 or f16 operands";
  if (!owns(g.a.data) || !owns(g.b.data) || !owns(g.c) || (g.bias && !owns(g.bias)) || (usesAux && !owns(g.aux)))
    return "a GEMM operand is not in device memory";
  // What cuBLASLt refuses of a GeLU epilogue (CublasLtGemm.cpp): the simulator refuses it too, so that a plan
  // that runs here does not fail on a GPU.
  if (usesAux && (g.auxType != g.cType || g.auxLd % 8 != 0 || g.auxLd < g.n))
    return "a GeLU epilogue needs an aux matrix of D's type with a leading dimension divisible by 8 and at least n";
  if (g.epilogue == device::GemmEpilogue::DGelu && g.bias)
    return "the DGELU epilogue takes no bias";
  ++gemms;
  auto *c = static_cast<std::byte *>(g.c);
  auto *aux = static_cast<std::byte *>(g.aux);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float sum = 0.0f; // CUBLAS_COMPUTE_32F: every product and partial sum in f32
      for (int64_t l = 0; l < g.k; ++l)
        sum += float(element(g.a, i, l)) * float(element(g.b, l, j));
      float result = g.alpha * sum;
      if (g.beta != 0.0f) // beta = 0 never reads the output, which may hold anything
        result += g.beta * float(readDevice(g.cType, c, i * g.ldc + j));
      if (g.bias)
        result += float(readDevice(g.biasType, static_cast<const std::byte *>(g.bias), j));
      // The epilogue works on the f32 value; only what it stores is rounded (once, to its buffer's type).
      if (g.epilogue == device::GemmEpilogue::GeluAux) {
        writeDevice(g.auxType, aux, i * g.auxLd + j, result);
        result = geluTanh(result);
      } else if (g.epilogue == device::GemmEpilogue::DGelu) {
        result *= geluTanhDerivative(float(readDevice(g.auxType, aux, i * g.auxLd + j)));
      }
      writeDevice(g.cType, c, i * g.ldc + j, result);
    }
  return {};
}

} // namespace megatron::cudasim
