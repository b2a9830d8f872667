//===- PlanBuilder.h - Lowering mt IR to a plan ----------------*- C++ -*-===//

#ifndef MEGATRON_PLAN_PLANBUILDER_H
#define MEGATRON_PLAN_PLANBUILDER_H

#include "megatron/Plan/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

namespace mlir::mt {

/// Lowers a module holding `@train_step` (from mt-autodiff) and `@forward` to a plan: one buffer per parameter,
/// gradient and AdamW moment; one per input; activations placed by the memory planner in one arena that both
/// programs share. Fails with a diagnostic on an op it cannot lower.
FailureOr<megatron::plan::Plan> buildPlan(ModuleOp module);

/// One plan per pipeline stage of a module split by mt-pipeline (one plan for a module that is not): each holds
/// the stage's parameters, the halves of its chunks' training steps with their stash, the schedule, and the
/// gradient sums of its own parameters.
FailureOr<std::vector<megatron::plan::Plan>> buildPlans(ModuleOp module);

} // namespace mlir::mt

#endif // MEGATRON_PLAN_PLANBUILDER_H
