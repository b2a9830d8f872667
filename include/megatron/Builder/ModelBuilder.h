//===- ModelBuilder.h - mt IR from a ModelConfig ---------------*- C++ -*-===//

#ifndef MEGATRON_BUILDER_MODELBUILDER_H
#define MEGATRON_BUILDER_MODELBUILDER_H

#include "megatron/Model/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::mt {

/// Builds the mt description of a GPT, BERT or T5 model: one `mt.param` per parameter, named as Megatron-core's
/// checkpoints name them, and a function `@forward` computing the training loss of one micro-batch. `config` must
/// be resolved and valid (ModelConfig::resolveDefaults, ModelConfig::validate). The dialects it uses must be
/// loaded in `context` (mt, func).
OwningOpRef<ModuleOp> buildModel(MLIRContext &context, const megatron::ModelConfig &config);

} // namespace mlir::mt

#endif // MEGATRON_BUILDER_MODELBUILDER_H
