//===- GpuTolerances.h - How far a GPU may be from the CPU engine, and why ---*- C++ -*-===//
//
// The GPU tests' tolerances, named so that a session with a GPU can tighten them after measuring (the tests print
// the worst differences per op, per model and per run). They are looser than the simulator's
// (SimulatedStepsTest, SimulatedOptimizerTest, DeviceEngineTest) for three reasons the simulator cannot show:
//
// - NVRTC contracts a multiply followed by an add into one FMA (--fmad=true, its default), which rounds once
//   where the CPU and the simulator (-ffp-contract=off) round twice: every such expression may differ by an ulp
//   of its result, and reductions carry those differences on.
// - CUDA's expf, tanhf, erff, sinf and cosf are within 2 ulp, not the host libm's results (the simulator) nor
//   the CPU's polynomials (~5e-7).
// - cuBLASLt sums a GEMM's products in an order of its choosing (tiles, split-K), not the CPU's; with
//   CUBLAS_COMPUTE_32F (no TF32) each output still differs by a few f32 roundings of its largest terms.
//
// No fast-math: divisions and square roots are IEEE (NVRTC's -prec-div and -prec-sqrt defaults), denormals kept.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_GPUTOLERANCES_H
#define MEGATRON_TEST_UNIT_CUDA_GPUTOLERANCES_H

#include "EngineComparison.h"
#include "StepChecker.h"

namespace megatron::test {

/// One generated step on the CPU's inputs: an f32 output within 5e-6 of its scale (the simulator is held to 1e-5
/// and measured at most 7.9e-7; FMA contraction and CUDA's libm add an ulp or two per operation, ~1e-7 each, to
/// the reductions' reordering); a 16-bit output within 2 units of its format, since the f32 value it rounds may
/// now differ by more than the simulator's and land past the neighbouring 16-bit number's midpoint; f64 as on the
/// simulator.
constexpr StepTolerances kGpuSteps{/*f32=*/5e-6, /*f64=*/1e-12, /*sixteenBitUlps=*/2};

/// AdamW element by element, relative to each tensor's scale: with FMAs the update p·decay + step·m̂/(√v̂ + ε)
/// and the moments' lerps round differently from the CPU's separate operations, by an ulp or two of the result
/// (1.2e-7 relative each); 1e-6 leaves room for a few. On the simulator it is bit for bit.
constexpr double kGpuAdamw = 1e-6;
/// The sum of squares: exact squares of floats added in double, in another order; as on the simulator.
constexpr double kGpuSumOfSquares = 1e-12;
/// The scale kernel is one multiplication per element, nothing to contract: bit for bit, as on the simulator.
constexpr double kGpuScale = 0;

/// Whole programs (no step gets the CPU's inputs, so differences carry through forward and backward, and every
/// linear layer is a cuBLASLt GEMM summed in its own order). The simulator measured f32 losses bitwise and
/// gradients within 9.6e-7 of their tensors' scale; on a GPU each GEMM and each FMA adds its own rounding, so f32
/// is allowed 2e-5 (loss) and 1e-4 (gradients). 16-bit activations: a value that rounds to the neighbouring
/// 16-bit number (bf16 2^-8, f16 2^-11 relative) flows on through the program, and a GPU's different f32 sums make
/// that happen more often than the simulator's; the tensor-core attention's rounded probabilities and dS (the
/// same kernels on both) add about two units per attention step. Eight such units of the tensor's scale for the
/// gradients (the simulator allows four and measured two), 2e-4 for the losses (means over tokens in f32).
inline EngineTolerances gpuEngineTolerances(plan::DType compute) {
  switch (compute) {
  case plan::DType::BF16:
    return {/*loss=*/2e-4, /*gradient=*/0x1p-5};
  case plan::DType::F16:
    return {/*loss=*/2e-4, /*gradient=*/0x1p-8};
  default:
    return {/*loss=*/2e-5, /*gradient=*/1e-4};
  }
}

/// Four training iterations of the GPT in f32 (the simulator: 1e-5, 1e-4, 1e-4; measured 4.9e-8, 3.2e-7, 2.3e-6).
/// The parameters' mean difference grows with each update whose near-zero gradients flip sign under the GPU's
/// larger reordering noise, so it gets the most room.
constexpr TrainingTolerances kGpuTraining{/*loss=*/5e-5, /*norm=*/5e-4, /*meanParameter=*/5e-4};

/// The f16 losses after a skipped step and one update (the simulator: 1e-4).
constexpr double kGpuFp16Loss = 1e-3;

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_GPUTOLERANCES_H
