//===- MtOps.h - Operations of the mt dialect ------------------*- C++ -*-===//

#ifndef MEGATRON_DIALECTS_MT_MTOPS_H
#define MEGATRON_DIALECTS_MT_MTOPS_H

#include "dialects/mt/MtAttrs.h"
#include "dialects/mt/MtDialect.h"
#include "dialects/mt/MtTraits.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/mt/MtSharding.h"
#include "dialects/mt/MtInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/mt/MtOps.h.inc"

namespace mlir::mt {
/// Module attributes of a sharded module (set by --mt-shard): the tensor-parallel group's size, and whether the
/// norm/dropout/residual regions are split along the sequence.
inline constexpr llvm::StringLiteral kTensorParallelAttr = "mt.tensor_parallel";
inline constexpr llvm::StringLiteral kSequenceParallelAttr = "mt.sequence_parallel";
/// The data-parallel group's size, and whether its optimizer is sharded (ZeRO-1) instead of its gradients summed.
inline constexpr llvm::StringLiteral kDataParallelAttr = "mt.data_parallel";
inline constexpr llvm::StringLiteral kDistributedOptimizerAttr = "mt.distributed_optimizer";
/// Pipeline stages (--mt-pipeline): the module's stage count, each op's stage, the stages a parameter is used on.
inline constexpr llvm::StringLiteral kPipelineParallelAttr = "mt.pipeline_parallel";
inline constexpr llvm::StringLiteral kStageAttr = "mt.stage";
inline constexpr llvm::StringLiteral kStagesAttr = "mt.stages";
/// Model chunks per pipeline stage (Megatron's virtual pipeline stages, interleaved 1F1B). With it, mt.stage and
/// mt.stages count model chunks, 0 .. p·v - 1, and chunk c runs on pipeline rank c mod p.
inline constexpr llvm::StringLiteral kVirtualPipelineAttr = "mt.virtual_pipeline";
/// The model chunks of the module holding `op`: mt.pipeline_parallel × mt.virtual_pipeline (1 when unsplit).
int64_t pipelineChunks(Operation *op);
/// Numbers the random ops of `body` (dropout, attention with dropout) in program order, from `first`, leaving
/// ops that have a stream already: the backward names its forward's mask by it, and pipeline chunks keep the
/// whole model's numbers so that they draw the single-rank masks. Returns the next free number.
int64_t assignRngStreams(Block &body, int64_t first = 0);
/// The size of the tensor-parallel group of the module holding `op` (1 for an unsharded module).
int64_t tensorParallelSize(Operation *op);
} // namespace mlir::mt

#endif // MEGATRON_DIALECTS_MT_MTOPS_H
