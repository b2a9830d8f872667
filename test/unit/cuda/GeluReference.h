//===- GeluReference.h - The tanh GeLU in float64, for checking epilogues ---*- C++ -*-===//
//
// The references the GeLU epilogue tests compare against (CudaBackendTest on a GPU, SimulatedGemmTest on the
// simulator): Megatron's tanh approximation and its derivative, in double.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_GELUREFERENCE_H
#define MEGATRON_TEST_UNIT_CUDA_GELUREFERENCE_H

#include <cmath>

namespace megatron::test {

inline constexpr double kGeluSqrt2OverPi = 0.79788456080286535588, kGeluCubic = 0.044715;

inline double geluTanh(double v) {
  return 0.5 * v * (1.0 + std::tanh(kGeluSqrt2OverPi * (v + kGeluCubic * v * v * v)));
}

inline double geluTanhDerivative(double v) {
  const double t = std::tanh(kGeluSqrt2OverPi * (v + kGeluCubic * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * kGeluSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * v * v);
}

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_GELUREFERENCE_H
