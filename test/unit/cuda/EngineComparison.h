//===- EngineComparison.h - Whole programs on the device engine against the CPU engine ---*- C++ -*-===//
//
// The device engine (runtime/device) over any device::DeviceBackend, against the CPU engine: both start from the
// same parameters and inputs and run whole programs, with nothing but the data loader's inputs crossing to the
// device, so differences carry through the whole forward and backward as they do in training. Unlike the step
// checker (StepChecker.h), no step gets the CPU's inputs. Written once: DeviceEngineTest runs these over the host
// simulator, GpuEngineTest over a GPU, each with its own tolerances. Kernel launches, GEMMs and host copies are
// counted by wrapping the backend (CountingBackend.h).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_ENGINECOMPARISON_H
#define MEGATRON_TEST_UNIT_CUDA_ENGINECOMPARISON_H

#include "runtime/device/DeviceBackend.h"

#include <ostream>
#include <string>
#include <vector>

namespace megatron::test {

/// One model of the whole-program comparison.
struct EngineComparisonModel {
  const char *name;            ///< for the printed report: "llama bf16"
  const char *id;              ///< the test's name: "LlamaBf16"
  const char *plan;            ///< its name in TestPlans.h
  double lossScale;            ///< fp16's reaches the loss seed's kernel as a run-time value
  plan::DType compute;         ///< the activations' type, which decides the tolerances
  /// Compiled with --mt-fuse-elementwise, so that the MLP's GeLU runs in cuBLASLt's epilogues: see
  /// fusedGeluTolerances.
  bool fusedGelu = false;
};

/// For gtest's test listing: the model's name, not the bytes of the struct.
inline void PrintTo(const EngineComparisonModel &model, std::ostream *out) { *out << model.name; }

/// The GPT, BERT and the LLaMA-style model in f32; the LLaMA-style model in bf16, and in f16 with loss scale 1024;
/// the GPT in bf16 compiled with --mt-fuse-elementwise.
const std::vector<EngineComparisonModel> &engineComparisonModels();

/// How far the device engine may be from the CPU engine over whole programs: each loss relative to the CPU's, and
/// every parameter gradient's worst |difference| relative to the CPU tensor's scale (its largest |value|).
struct EngineTolerances {
  double loss = 1e-5;
  double gradient = 1e-5;
};

/// `tolerances` for `model`: with 16-bit activations and the GeLU in the GEMMs' epilogues (linear_gelu,
/// linear_grad_input_gelu), the device applies the GeLU to the f32 accumulator and scales fc2's f32 input gradient,
/// where the CPU rounds both to 16 bits first, as the unfused pair stored them: one rounding less per MLP, forward
/// and backward, whose differences flow on like any other 16-bit rounding. The gradients get twice the room.
/// Measured in the simulator on the bf16 GPT: 1.8e-2 of the worst tensor's scale (a layer norm's weight), 9.7e-3
/// with the CPU's two roundings put back into the simulated epilogues.
EngineTolerances fusedGeluTolerances(const EngineComparisonModel &model, EngineTolerances tolerances);

/// What one comparison measured.
struct ProgramComparison {
  std::vector<double> cpuLosses, deviceLosses;
  double worstGradient = 0;   ///< over every parameter gradient, relative to its scale
  std::string worstParameter;
  int gradients = 0;
  int launches = 0, gemms = 0;
  int hostCopiesPerRun = 0;   ///< the most host copies the device engine made inside one program run
};

/// Both engines from the same random parameters and inputs: two micro-batches of train_step with different inputs
/// and dropout seeds, then the evaluation forward; the losses of each run and every gradient after the second
/// micro-batch. "" or what failed.
std::string compareTrainStep(const plan::Plan &plan, double lossScale, device::DeviceBackend &backend,
                             ProgramComparison &result);

/// compareTrainStep, its report printed, and gtest expectations: the losses and gradients within `tolerances`,
/// every gradient compared, GEMMs run, and at most one host copy inside a run (the index-status words).
void expectTrainStepMatches(const EngineComparisonModel &model, device::DeviceBackend &backend,
                            const EngineTolerances &tolerances);

/// How far `iterations` whole training iterations may drift: the summed micro-batch losses and the gradient norm
/// relative to the CPU's, and the parameters' mean |difference| relative to their mean |value| (AdamW divides by
/// sqrt(v), so for an element whose gradient is ~0 summation-order noise can move it by up to 2·lr per step: the
/// worst element is printed, not checked).
struct TrainingTolerances {
  double loss = 1e-5;
  double norm = 1e-4;
  double meanParameter = 1e-4;
};

/// Whole training iterations of the test GPT, as megatron-run's trainer runs them (runtime/train,
/// Run::trainIteration): the gradients zeroed, two micro-batches of train_step, the global norm, clipping to 1.0
/// and AdamW, on the device engine and its optimizer (DeviceOptimizer) against the CPU engine and
/// cpu::sumOfSquares / scaleTensors / adamwStep. Nothing but the inputs crosses to the device between iterations.
void expectTrainingIterationsMatch(device::DeviceBackend &backend, int iterations,
                                   const TrainingTolerances &tolerances);

/// fp16's loss scaling on the device: a scale of 2^32 overflows the LLaMA-style model's f16 activation gradients,
/// and both the CPU trainer's rule and the device optimizer skip the step, changing nothing; at 1024 both step,
/// and the next iteration's losses agree within `lossTolerance` (relative).
void expectFp16OverflowSkipsTheStep(device::DeviceBackend &backend, double lossTolerance);

/// Two bad token ids: the device engine's run fails at the first position, in the first step that checks, as the
/// CPU engine's error names it; with good ids the next run succeeds (the status words are reset per run).
void expectBadTokenIdReportedAtItsPosition(device::DeviceBackend &backend);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_ENGINECOMPARISON_H
