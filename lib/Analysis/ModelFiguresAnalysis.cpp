//===- ModelFiguresAnalysis.cpp - Computing ModelFigures from mt IR --------===//

#include "megatron/Analysis/ModelFiguresAnalysis.h"

#include "dialects/mt/MtOps.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;
using megatron::ModelFigures;

namespace {
/// Accumulates products and sums in 64 bits and remembers whether any step overflowed.
struct CheckedMath {
  bool overflowed = false;
  uint64_t mul(uint64_t a, uint64_t b) {
    uint64_t r;
    overflowed |= __builtin_mul_overflow(a, b, &r);
    return r;
  }
  uint64_t add(uint64_t a, uint64_t b) {
    uint64_t r;
    overflowed |= __builtin_add_overflow(a, b, &r);
    return r;
  }
};

uint64_t bytesOf(Type elementType) { return llvm::divideCeil(elementType.getIntOrFloatBitWidth(), 8); }

std::string typeName(Type type) {
  std::string name;
  llvm::raw_string_ostream os(name);
  os << type;
  return name;
}
} // namespace

FailureOr<ModelFigures> mt::computeModelFigures(ModuleOp module) {
  ModelFigures figures;
  CheckedMath math;

  // Mixed precision (megatron-model --bf16 / --fp16): the f32 parameters are the master weights, and the model
  // computes with 16-bit copies of them that the plan keeps (its weights arena): the weights count in 16 bits and
  // the masters with the optimizer, Megatron's 18 bytes per parameter.
  Type compute;
  if (auto precision = module->getAttrOfType<StringAttr>("mt.precision")) {
    if (precision.getValue() == "bf16")
      compute = BFloat16Type::get(module.getContext());
    else if (precision.getValue() == "fp16")
      compute = Float16Type::get(module.getContext());
  }
  for (auto param : module.getOps<mt::ParamOp>()) {
    RankedTensorType type = param.getGlobalType(); // the model's, whatever shard this rank holds
    uint64_t count = type.getNumElements();
    Type element = type.getElementType();
    if (compute && element.isF32())
      element = compute;
    figures.parameterCount = math.add(figures.parameterCount, count);
    figures.parameterTensors += 1;

    StringRef component = param.getSymName().split('.').first;
    auto group = llvm::find_if(figures.parametersByComponent, [&](auto &entry) { return entry.first == component; });
    if (group == figures.parametersByComponent.end())
      figures.parametersByComponent.emplace_back(component.str(), count);
    else
      group->second = math.add(group->second, count);

    std::string dtype = typeName(element);
    if (figures.weightDtype.empty())
      figures.weightDtype = dtype;
    else if (figures.weightDtype != dtype)
      figures.weightDtype = "mixed";
    figures.weightBytes = math.add(figures.weightBytes, math.mul(count, bytesOf(element)));
    figures.gradientBytes = math.add(figures.gradientBytes, math.mul(count, 4));
    uint64_t optimizerPerElement = element.isF32() ? 8 : 12; // m, v (+ f32 master weights)
    figures.optimizerStateBytes = math.add(figures.optimizerStateBytes, math.mul(count, optimizerPerElement));
  }

  // Megatron's figures count the model's forward and derive the backward from it; after autodiff the module also
  // holds @train_step, whose ops would be counted twice, so only @forward counts when there is one.
  Operation *counted = module;
  if (Operation *forward = module.lookupSymbol("forward"))
    counted = forward;
  counted->walk([&](mt::FlopCountOpInterface op) {
    figures.forwardFlopsPerMicroBatch = math.add(figures.forwardFlopsPerMicroBatch, op.getForwardFlops());
  });
  if (auto attr = module->getAttrOfType<IntegerAttr>(kNumMicroBatchesAttr))
    figures.microBatchesPerIteration = attr.getInt();
  figures.forwardFlopsPerIteration = math.mul(figures.forwardFlopsPerMicroBatch, figures.microBatchesPerIteration);
  figures.backwardFlopsPerIteration = math.mul(figures.forwardFlopsPerIteration, 2);
  figures.flopsPerIteration = math.add(figures.forwardFlopsPerIteration, figures.backwardFlopsPerIteration);
  // modelStateBytes() sums the three; that sum must fit as well.
  (void)math.add(math.add(figures.weightBytes, figures.gradientBytes), figures.optimizerStateBytes);

  if (math.overflowed)
    return emitError(module.getLoc(), "model figures overflow 64 bits: the model is too large to report on");
  return figures;
}
