//===- CudaKernels.h - CUDA C++ kernels generated from a plan ---*- C++ -*-===//
//
// The CUDA backend's code generator: from a compiled plan (docs/plan.md) it emits one CUDA C++ translation unit
// per distinct kernel, with the plan's static shapes, attributes and storage types (f32, bf16, f16, f64) baked in
// as constants so that NVRTC specialises every loop. Each kernel says how it is launched and which plan steps it
// implements; the runtime compiles the sources with NVRTC (runtime/cuda) and binds the steps' buffers to the
// kernels' parameters. Matrix products (cuBLASLt), collectives (NCCL) and attention are not generated here: each
// such step is listed with the backend that will run it. MLIR-free; docs/cuda.md is the manual.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_CODEGEN_CUDAKERNELS_H
#define MEGATRON_CODEGEN_CUDAKERNELS_H

#include "megatron/Plan/Plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace megatron::codegen {

/// Where a kernel parameter's value comes from when a step is launched.
enum class ArgSource {
  Input,   ///< the step's input buffer `index` (its device address)
  Output,  ///< the step's output buffer `index`
  Attribute, ///< the step's integer attribute `name` (0 when absent), so that steps differing only in it share
             ///< a kernel: dropout's rng_stream
  Runtime, ///< a value the launcher supplies by `name` (see RuntimeArg below)
};

/// The runtime values a kernel can ask for, by name:
///   "tp_rank" (int): this rank in the tensor-parallel group, for steps that see a shard;
///   "dropout_seed" (unsigned long long): RunContext::dropoutSeed of the micro-batch;
///   "training" (int): 1 in training (dropout active), 0 in evaluation (dropout is a copy);
///   "loss_scale" (double): RunContext::lossScale, which the loss seed (a fill marked loss_seed) is multiplied by;
///   "index_status" (unsigned long long *): a device word set to ~0 before the step; afterwards the smallest
///       position of an id or label outside its range, as cpu::IndexStatus::position;
///   "workspace" (float * or double *): device memory of the runtime's that the kernels of a step joined by
///       collectives pass their statistics through (the vocabulary-parallel cross-entropy: 3·rows values);
///   and the optimizer kernels' own: "n" (long long), AdamW's step scalars (double), "decay" (int), "factor"
///   (float), "partial" and "total" (double *): see optimizerKernels().
struct KernelArg {
  ArgSource source = ArgSource::Input;
  int index = -1;    ///< Input/Output: the operand's position in the step
  std::string name;  ///< the parameter's name in the source (Runtime: the value's name above; Attribute: the
                     ///< attribute's name)
  std::string cType; ///< its C type in the source, e.g. "const __nv_bfloat16 *"
};

struct LaunchConfig {
  int64_t grid[3] = {1, 1, 1};
  int block[3] = {1, 1, 1};
  int sharedBytes = 0; ///< dynamic shared memory (the kernels here use static shared memory only)
};

/// A plan step: which program, and its index in that program's steps.
struct StepRef {
  std::string program;
  int step = -1;
  bool operator==(const StepRef &other) const { return program == other.program && step == other.step; }
};

/// One generated kernel: a complete CUDA C++ source with one extern "C" __global__ function named `name`.
struct CudaKernel {
  std::string name;   ///< stable: the op, its storage types and a hash of the source ("mt_layer_norm_f32_3f2a9c1e")
  std::string op;     ///< the plan op (or optimizer operation) it implements
  std::string role;   ///< which part of the op, when it takes several kernels ("row_lse", "mean", "dx", "dweight")
  std::string source; ///< the translation unit; includes only <cuda_bf16.h> and <cuda_fp16.h>
  LaunchConfig launch;
  std::vector<KernelArg> args; ///< in the order of the function's parameters
  std::vector<StepRef> steps;  ///< the plan steps it implements (identical steps share one kernel)
};

/// How a step runs on a CUDA device.
enum class StepBackend {
  Generated, ///< the kernels listed, launched in order
  CublasLt,  ///< a matrix product: linear, linear_grad_input, linear_grad_weight
  Nccl,      ///< a collective or pipeline message: the runtime calls its communicator. With kernels listed,
             ///< a step whose kernels the runtime joins with collectives (the vocabulary-parallel
             ///< cross-entropy forward: row_max, an all-reduce max of the rows' maxima, partial_sums, an
             ///< all-reduce sum of the rows' [sum, target] pairs, finish), through the "workspace" argument
  Missing,   ///< no CUDA implementation yet; `reason` says why
};
const char *toString(StepBackend backend);

struct StepPlan {
  StepRef ref;
  std::string op;
  StepBackend backend = StepBackend::Missing;
  std::vector<int> kernels; ///< indices into KernelSet::kernels, in launch order
  std::string reason;       ///< for Missing
};

struct KernelSet {
  std::vector<CudaKernel> kernels; ///< each distinct kernel once, in order of first use
  std::vector<StepPlan> steps;     ///< every step of every program, in program order
};

/// The kernels of every step of every program of `plan` (one pipeline stage). Never fails: a step it cannot
/// generate is listed with its backend (CublasLt, Nccl) or as Missing with the reason. The output is a pure
/// function of the plan, so kernel names and sources are stable across runs and machines.
KernelSet generateKernels(const plan::Plan &plan);

/// The C type of a buffer of `type` in the generated sources ("float", "__nv_bfloat16", "__half", "int", ...).
const char *cTypeOf(plan::DType type);

/// The optimizer's kernels for the plan's parameters: AdamW for each distinct (parameter, gradient, moment)
/// storage triple, and the gradient norm's squares (sum_squares_partial, sum_squares_finish) and the clipping
/// scale for each distinct gradient type. AdamW, sum_squares_partial and scale run over a work list (below) whose
/// device address ("items") and item count ("count") are run-time arguments, so one launch serves every
/// parameter; their launch grids are fixed. `steps` is empty; `role` names the storage types a kernel serves
/// (optimizerKernelRole).
std::vector<CudaKernel> optimizerKernels(const plan::Plan &plan);

/// The optimizer kernels' work lists ("multi-tensor apply", lib/CodeGen/cuda/Optimizer.cuh): each tensor is split
/// into items of at most kOptimizerItemElements elements, so that a launch's blocks share the work evenly. An
/// AdamW item is 6 words (the addresses of the parameter, gradient and both moments, the elements, and 1 to
/// apply weight decay, else 0); a sum_squares_partial or scale item is 2 words (address, elements).
inline constexpr int64_t kOptimizerItemElements = int64_t(1) << 16;
struct AdamwTensor {
  void *param = nullptr;
  const void *grad = nullptr;
  void *expAvg = nullptr, *expAvgSq = nullptr;
  int64_t elements = 0;
  bool decay = true;
  plan::DType paramType = plan::DType::F32, gradType = plan::DType::F32, momentType = plan::DType::F32;
};
void appendAdamwItems(std::vector<long long> &items, const AdamwTensor &tensor);
void appendSpanItems(std::vector<long long> &items, const void *data, plan::DType type, int64_t elements);
/// Words per item of the list of `op` ("adamw": 6; "sum_squares_partial", "scale": 2).
int optimizerItemWords(const std::string &op);
/// The role of the optimizer kernel for storage `types`: "f32" for a gradient type (sum_squares_partial, scale),
/// "f32_f32_f32" for AdamW's parameter, gradient and moments.
std::string optimizerKernelRole(const std::vector<plan::DType> &types);

/// The same-device communicator's reduction (runtime/device/SameDeviceCommunicator.h, lib/CodeGen/cuda/
/// RankReduction.cuh): destinations[d][i] = sources[0][i] op ... op sources[ranks-1][i] in rank order, for every
/// d < destination_count, in f32 for f32, bf16 and f16 (rounded once when stored), f64 for f64, wrapping for i32
/// and i64; op is max (a NaN wins) or sum. Its parameters are run-time values: "sources" and "destinations"
/// (mt::RankPointers, up to kMaxReduceRanks device pointers by value), "ranks" and "destination_count" (int) and
/// "n" (long long, elements). `elements` picks the grid: a small one up to kSmallRankReduction, else one that
/// fills a GPU (two kernels per type and op at most).
inline constexpr int kMaxReduceRanks = 16;
inline constexpr int64_t kSmallRankReduction = 1 << 16;
CudaKernel rankReductionKernel(plan::DType type, bool max, int64_t elements);

/// The blocks of the sum_squares_partial kernels (a fixed number, so that the sum's order is fixed): the
/// "partial" workspace holds this many doubles.
inline constexpr int kSumSquaresGrid = 264;

} // namespace megatron::codegen

#endif // MEGATRON_CODEGEN_CUDAKERNELS_H
