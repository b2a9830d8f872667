//===- MtDialect.cpp - The mt dialect --------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "dialects/mt/MtOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

using namespace mlir;
using namespace mlir::mt;

#include "dialects/mt/MtDialect.cpp.inc"

void MtDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "dialects/mt/MtOps.cpp.inc"
      >();
}

/// A model module may carry:
///   mt.model = "gpt" | "bert" | "t5"   what megatron-model generated (informational);
///   mt.num_micro_batches = N : i64     micro-batches per training iteration (global batch / micro batch);
///   mt.tensor_parallel = T : i64       a sharded module: one rank's program for a tensor-parallel group of T;
///   mt.sequence_parallel               (unit) its norm, dropout and residual regions are split along the sequence;
///   mt.data_parallel = D : i64         D replicas each run 1/D of the micro-batches;
///   mt.distributed_optimizer           (unit) the replicas shard the optimizer (ZeRO-1).
namespace {
LogicalResult expectPositiveI64(Operation *op, NamedAttribute attribute) {
  auto value = dyn_cast<IntegerAttr>(attribute.getValue());
  if (!value || !value.getType().isSignlessInteger(64) || value.getInt() <= 0)
    return op->emitError() << "'" << attribute.getName().strref() << "' must be a positive i64, got "
                           << attribute.getValue();
  return success();
}
LogicalResult expectUnit(Operation *op, NamedAttribute attribute) {
  if (!isa<UnitAttr>(attribute.getValue()))
    return op->emitError() << "'" << attribute.getName().strref() << "' is a unit attribute, got "
                           << attribute.getValue();
  return success();
}
} // namespace

/// The pipeline stage attributes of ops and parameters: stages of the module's mt.pipeline_parallel.
static LogicalResult verifyStages(Operation *op, NamedAttribute attribute) {
  auto module = op->getParentOfType<ModuleOp>();
  int64_t stages = module ? pipelineChunks(module) : 1;
  SmallVector<int64_t> values;
  if (auto one = dyn_cast<IntegerAttr>(attribute.getValue()); one && attribute.getName() == kStageAttr)
    values.push_back(one.getInt());
  else if (auto list = dyn_cast<DenseI64ArrayAttr>(attribute.getValue()); list && attribute.getName() == kStagesAttr)
    values.assign(list.asArrayRef().begin(), list.asArrayRef().end());
  else
    return op->emitError() << "'" << attribute.getName().strref() << "' must be "
                           << (attribute.getName() == kStageAttr ? "an integer" : "an array<i64: ...>") << ", got "
                           << attribute.getValue();
  for (int64_t stage : values)
    if (stage < 0 || stage >= stages)
      return op->emitError() << "pipeline stage " << stage << " is outside the module's " << stages
                             << " model chunks ('" << kPipelineParallelAttr << "' x '" << kVirtualPipelineAttr
                             << "')";
  return success();
}

LogicalResult MtDialect::verifyOperationAttribute(Operation *op, NamedAttribute attribute) {
  StringRef name = attribute.getName().strref();
  if (name == kStageAttr || (name == kStagesAttr && isa<ParamOp>(op)))
    return verifyStages(op, attribute);
  if (!isa<ModuleOp>(op))
    return op->emitError() << "'" << name << "' belongs on the model's builtin.module";
  if (name == "mt.model") {
    if (!isa<StringAttr>(attribute.getValue()))
      return op->emitError() << "'mt.model' must be a string, got " << attribute.getValue();
    return success();
  }
  if (name == "mt.precision") {
    // The compute type megatron-model's --bf16 / --fp16 ask for, which --mt-mixed-precision applies.
    auto value = dyn_cast<StringAttr>(attribute.getValue());
    if (!value || !llvm::is_contained({"fp32", "bf16", "fp16"}, value.getValue()))
      return op->emitError() << "'mt.precision' must be \"fp32\", \"bf16\" or \"fp16\", got " << attribute.getValue();
    return success();
  }
  if (name == "mt.num_micro_batches" || name == kTensorParallelAttr || name == kDataParallelAttr ||
      name == kPipelineParallelAttr || name == kVirtualPipelineAttr)
    return expectPositiveI64(op, attribute);
  if (name == kDistributedOptimizerAttr)
    return expectUnit(op, attribute);
  if (name == kSequenceParallelAttr) {
    if (failed(expectUnit(op, attribute)))
      return failure();
    if (tensorParallelSize(op) < 2)
      return op->emitError() << "'" << name << "' needs 'mt.tensor_parallel' of at least 2";
    return success();
  }
  return op->emitError() << "unknown module attribute '" << name << "'";
}

/// A model function names each argument for the runtime that feeds it: {mt.input = "tokens"}, "labels",
/// "loss_mask", "padding_mask", ... (docs/dialect.md lists them).
LogicalResult MtDialect::verifyRegionArgAttribute(Operation *op, unsigned regionIndex, unsigned argIndex,
                                                  NamedAttribute attribute) {
  if (attribute.getName() != "mt.input")
    return op->emitError() << "unknown argument attribute '" << attribute.getName().strref() << "' on argument #"
                           << argIndex;
  auto name = dyn_cast<StringAttr>(attribute.getValue());
  if (!name || name.getValue().empty())
    return op->emitError() << "'mt.input' of argument #" << argIndex << " must be a non-empty string";
  // The runtime feeds inputs by name, so two arguments cannot share one.
  if (auto function = dyn_cast<FunctionOpInterface>(op))
    for (unsigned other = 0; other < argIndex; ++other)
      if (function.getArgAttr(other, "mt.input") == name)
        return op->emitError() << "arguments #" << other << " and #" << argIndex << " are both named '"
                               << name.getValue() << "'";
  return success();
}

LogicalResult MtDialect::verifyRegionResultAttribute(Operation *op, unsigned regionIndex, unsigned resultIndex,
                                                     NamedAttribute attribute) {
  return op->emitError() << "unknown result attribute '" << attribute.getName().strref() << "' on result #"
                         << resultIndex;
}
