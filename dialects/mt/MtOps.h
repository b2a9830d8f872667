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
/// The size of the tensor-parallel group of the module holding `op` (1 for an unsharded module).
int64_t tensorParallelSize(Operation *op);
} // namespace mlir::mt

#endif // MEGATRON_DIALECTS_MT_MTOPS_H
