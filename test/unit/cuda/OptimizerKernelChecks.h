//===- OptimizerKernelChecks.h - The optimizer kernels on a backend against runtime/cpu ---*- C++ -*-===//
//
// codegen::optimizerKernels of the test GPT on random data sized past one grid-stride pass of their fixed grids
// (1024·256 threads), on any device::DeviceBackend, against cpu::adamwStep, cpu::sumOfSquares and cpu::scale. The
// host computes AdamW's step scalars in double as the device optimizer does (docs/cuda.md). Each check prints the
// worst difference it measured, and returns "" or the first element beyond its tolerance.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_OPTIMIZERKERNELCHECKS_H
#define MEGATRON_TEST_UNIT_CUDA_OPTIMIZERKERNELCHECKS_H

#include "runtime/device/DeviceBackend.h"

#include <string>

namespace megatron::test {

/// AdamW (weight decay on and off): the parameters and both moments within `relativeTolerance` of each tensor's
/// scale (its largest |CPU value|); 0 asks for equality bit for bit.
std::string checkAdamw(device::DeviceBackend &backend, double relativeTolerance);

/// The two-pass sum of squares (partials in double, then their sum added to a running total) within
/// `relativeTolerance` of cpu::sumOfSquares.
std::string checkSumOfSquares(device::DeviceBackend &backend, double relativeTolerance);

/// The scale kernel within `relativeTolerance` of cpu::scale, element by element (0: bit for bit).
std::string checkScale(device::DeviceBackend &backend, double relativeTolerance);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_OPTIMIZERKERNELCHECKS_H
