//===- ModelStepChecks.h - Every generated step of the test models against the CPU engine ---*- C++ -*-===//
//
// The test models whose generated steps every backend's step test checks (SimulatedStepsTest over the host
// simulator, GpuStepsTest over a GPU), and the run that checks them: the CPU engine runs two micro-batches of
// train_step (the second accumulating into the gradients the first left) and then every other program as an
// evaluation, one step at a time, with StepChecker running each generated step on the device first. Written
// once, so that the simulator and a GPU check the same kernels on the same data.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_MODELSTEPCHECKS_H
#define MEGATRON_TEST_UNIT_CUDA_MODELSTEPCHECKS_H

#include "StepChecker.h"

#include "runtime/device/DeviceBackend.h"
#include "runtime/engine/Engine.h"

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace megatron::test {

/// A fresh backend, or null and `error`. A tensor-parallel check asks for one per rank, each used by its rank's
/// thread only.
using BackendFactory = std::function<std::unique_ptr<device::DeviceBackend>(std::string &error)>;

/// One model of the step checks.
struct StepCheckModel {
  const char *name;             ///< for the printed summary: "gpt f32, tp 2 + sequence parallel"
  const char *id;               ///< the test's name: "ShardedGptF32"
  const char *plan;             ///< its name in TestPlans.h
  double lossScale;             ///< the train_step's loss scale (fp16's reaches the kernels as a run-time value)
};

/// For gtest's test listing: the model's name, not the bytes of the struct.
inline void PrintTo(const StepCheckModel &model, std::ostream *out) { *out << model.name; }

/// The GPT and the LLaMA-style model in f32; the latter in bf16 and in f16 with loss scale 1024; BERT and T5; the
/// GPT (with sequence parallelism), the LLaMA-style model, BERT (with sequence parallelism) and T5 sharded over two
/// tensor-parallel ranks; the GPT of odd shapes on one rank and on two.
const std::vector<StepCheckModel> &stepCheckModels();

/// Checks every generated step of `plan` on random data (RandomFill.h, seed 42; `alter` may change it first), on
/// every rank of a tensor-parallel plan (threads joined by the thread communicator, which the CPU engine's
/// collectives need). Each rank runs on a backend of its own from `newBackend`, prepared with the plan's kernels
/// before the ranks start. Returns the first failure. With a `name`, prints per op and dtype the steps checked and
/// the worst differences (also after a failure: the differences up to it).
std::string checkPlanSteps(const char *name, const plan::Plan &plan, double lossScale,
                           const BackendFactory &newBackend, const StepTolerances &tolerances,
                           const std::function<void(runtime::Engine &)> &alter = nullptr);

/// checkPlanSteps on the model's plan (TestPlans.h), or why the plan cannot be had.
std::string checkModelSteps(const StepCheckModel &model, const BackendFactory &newBackend,
                            const StepTolerances &tolerances);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_MODELSTEPCHECKS_H
