//===- ModelFiguresAnalysis.h - Computing ModelFigures from mt IR -*- C++ -*-===//

#ifndef MEGATRON_ANALYSIS_MODELFIGURESANALYSIS_H
#define MEGATRON_ANALYSIS_MODELFIGURESANALYSIS_H

#include "megatron/Analysis/ModelFigures.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

namespace mlir::mt {

/// Name of the module attribute giving how many micro-batches one training iteration runs (default 1).
inline constexpr llvm::StringLiteral kNumMicroBatchesAttr = "mt.num_micro_batches";

/// Derives the figures from the `mt.param` declarations and the FLOP counts of the ops of `module`. Fails, with a
/// diagnostic on the module, when a figure overflows 64 bits.
FailureOr<megatron::ModelFigures> computeModelFigures(ModuleOp module);

} // namespace mlir::mt

#endif // MEGATRON_ANALYSIS_MODELFIGURESANALYSIS_H
