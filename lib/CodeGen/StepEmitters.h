//===- StepEmitters.h - The kernels of each plan op --------------*- C++ -*-===//
//
// Internal to lib/CodeGen. One function per family of plan ops; each returns the kernels of one step in launch
// order, or sets `error` (a missing attribute, a shape the kernels do not take) and returns none.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_LIB_CODEGEN_STEPEMITTERS_H
#define MEGATRON_LIB_CODEGEN_STEPEMITTERS_H

#include "megatron/CodeGen/CudaKernels.h"

#include <initializer_list>
#include <string>
#include <vector>

namespace megatron::codegen::detail {

class KernelEmitter;

using StepEmitter = std::vector<CudaKernel> (*)(const plan::Plan &, const plan::Step &, std::string &error);

/// fill, zero, accumulate, add, add_bias, sum_rows (ElementwiseKernels.cpp).
std::vector<CudaKernel> emitElementwise(const plan::Plan &, const plan::Step &, std::string &error);
/// gelu, gelu_grad, swiglu, swiglu_grad, dropout (ActivationKernels.cpp).
std::vector<CudaKernel> emitActivation(const plan::Plan &, const plan::Step &, std::string &error);
/// rope, rope_grad, split_qkv, merge_qkv, split_kv, merge_kv (HeadKernels.cpp).
std::vector<CudaKernel> emitHeads(const plan::Plan &, const plan::Step &, std::string &error);
/// layer_norm, layer_norm_grad, rms_norm, rms_norm_grad (NormKernels.cpp).
std::vector<CudaKernel> emitNorm(const plan::Plan &, const plan::Step &, std::string &error);
/// cross_entropy, cross_entropy_grad (LossKernels.cpp).
std::vector<CudaKernel> emitLoss(const plan::Plan &, const plan::Step &, std::string &error);
/// Whether a step's kernels are joined by collectives that the runtime runs between them (the
/// vocabulary-parallel cross-entropy forward): its StepPlan's backend is then Nccl, with the kernels listed.
bool joinedByCollectives(const plan::Step &step);
/// embedding, embedding_grad, add_position_embedding, position_embedding_grad (EmbeddingKernels.cpp).
std::vector<CudaKernel> emitEmbedding(const plan::Plan &, const plan::Step &, std::string &error);

std::vector<CudaKernel> emitAttention(const plan::Plan &, const plan::Step &, std::string &error);
std::vector<CudaKernel> emitPositionBias(const plan::Plan &, const plan::Step &, std::string &error);
std::vector<CudaKernel> emitPooler(const plan::Plan &, const plan::Step &, std::string &error);

/// Dropout's keep rule, as runtime/cpu/Philox.h: kept iff bits >= ceil(rate·2^32); kept elements scale by
/// 1/(1 − rate), and by 0 when everything is dropped.
uint64_t keepThreshold(double rate);
double keepScale(double rate);

/// The kernels of several emitters, in order, or none with `error` set: the ending of a multi-kernel step.
std::vector<CudaKernel> several(std::initializer_list<const KernelEmitter *> emitters, std::string &error);

/// One kernel, or none with `error` set: the common ending of an emitter.
std::vector<CudaKernel> single(const KernelEmitter &emitter, std::string &error);

} // namespace megatron::codegen::detail

#endif // MEGATRON_LIB_CODEGEN_STEPEMITTERS_H
