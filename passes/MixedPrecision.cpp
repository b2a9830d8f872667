//===- MixedPrecision.cpp - 16-bit compute with f32 master weights --------===//
//
// --mt-mixed-precision: Megatron's --bf16 / --fp16. Parameters stay f32 and are cast where they are read, so the
// optimizer, the gradient buffers, checkpoints and the distributed optimizer see f32 as before, and a cast's
// backward (a cast back to f32) hands autodiff f32 parameter gradients. Megatron keeps 16-bit parameters and an
// f32 master copy in the optimizer instead; the bytes are the same (2 + 4 + 4 + 8 per parameter either way, the
// 16-bit copies being activations here), and keeping the parameters f32 leaves every later stage unchanged.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::mt {
#define GEN_PASS_DEF_MTMIXEDPRECISION
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using namespace mlir::mt;

namespace {

bool isF32Tensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && tensor.getElementType().isF32();
}

Type withElement(Type type, Type element) { return cast<RankedTensorType>(type).clone(element); }

/// Whether `name` is a forward function this pass converts: @forward and the pipeline chunks @forward_chunk<c>.
bool isForward(StringRef name) { return name == "forward" || name.starts_with("forward_chunk"); }

/// Operands that stay f32 whatever the compute type: the loss mask weighs the loss, which is f32.
bool keepsF32Operand(Operation *op, unsigned index) {
  auto loss = dyn_cast<CrossEntropyOp>(op);
  return loss && loss.getLossMask() && index == op->getNumOperands() - 1;
}

struct MtMixedPrecisionPass : mt::impl::MtMixedPrecisionBase<MtMixedPrecisionPass> {
  using MtMixedPrecisionBase::MtMixedPrecisionBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::string precision = dtype;
    if (precision.empty()) {
      auto attr = module->getAttrOfType<StringAttr>("mt.precision");
      if (!attr || attr.getValue() == "fp32")
        return; // nothing asked for: an f32 model stays f32
      precision = attr.getValue().str();
    }
    Builder builder(&getContext());
    Type low;
    if (precision == "bf16")
      low = builder.getBF16Type();
    else if (precision == "fp16")
      low = builder.getF16Type();
    else {
      emitError(module.getLoc(), "mt-mixed-precision: dtype must be bf16 or fp16, got '") << precision << "'";
      return signalPassFailure();
    }
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.getName().starts_with("train_step")) {
        emitError(module.getLoc(), "mt-mixed-precision: the module already has @")
            << func.getName() << "; run --mt-mixed-precision before --mt-autodiff";
        return signalPassFailure();
      }
    }
    bool converted = false;
    for (auto func : llvm::make_early_inc_range(module.getOps<func::FuncOp>()))
      if (isForward(func.getName()) && !func.isExternal()) {
        if (failed(convert(func, low)))
          return signalPassFailure();
        converted = true;
      }
    if (!converted) {
      emitError(module.getLoc(), "mt-mixed-precision: the module has no @forward to convert");
      return signalPassFailure();
    }
    module->setAttr("mt.precision", builder.getStringAttr(precision));
  }

  LogicalResult convert(func::FuncOp func, Type low) {
    Block &body = func.getBody().front();
    OpBuilder b(func.getContext());

    // An already 16-bit value anywhere means the pass ran before (or the IR was written 16-bit).
    WalkResult mixed = func.walk([&](Operation *op) {
      for (Type t : op->getResultTypes())
        if (auto tensor = dyn_cast<RankedTensorType>(t); tensor && (tensor.getElementType().isBF16() ||
                                                                    tensor.getElementType().isF16()))
          return WalkResult::interrupt();
      return WalkResult::advance();
    });
    if (mixed.wasInterrupted())
      return func.emitError("mt-mixed-precision: @") << func.getName() << " already computes in 16 bits";

    // f32 inputs (other than a loss mask) are cast once, at the top.
    b.setInsertionPointToStart(&body);
    for (BlockArgument arg : body.getArguments()) {
      if (!isF32Tensor(arg.getType()))
        continue;
      bool onlyLossMask = llvm::all_of(arg.getUses(), [](OpOperand &use) {
        return keepsF32Operand(use.getOwner(), use.getOperandNumber());
      });
      if (onlyLossMask)
        continue;
      auto cast = b.create<CastOp>(arg.getLoc(), withElement(arg.getType(), low), arg);
      arg.replaceUsesWithIf(cast, [&](OpOperand &use) {
        return use.getOwner() != cast && !keepsF32Operand(use.getOwner(), use.getOperandNumber());
      });
    }

    for (Operation &op : llvm::make_early_inc_range(body)) {
      if (isa<CastOp>(op) || isa<func::ReturnOp>(op))
        continue;
      if (auto ref = dyn_cast<ParamRefOp>(op)) {
        // The parameter stays the f32 master weight; compute reads its 16-bit copy.
        if (!isF32Tensor(ref.getType()))
          continue;
        b.setInsertionPointAfter(ref);
        auto cast = b.create<CastOp>(ref.getLoc(), withElement(ref.getType(), low), ref.getResult());
        ref.getResult().replaceAllUsesExcept(cast, cast);
        continue;
      }
      // The loss is f32 (mt.cross_entropy computes in f32 from 16-bit logits).
      if (isa<CrossEntropyOp>(op))
        continue;
      for (OpResult result : op.getResults())
        if (isF32Tensor(result.getType()))
          result.setType(withElement(result.getType(), low));
    }

    // A returned 16-bit value (the boundary of a pipeline chunk stays 16-bit; @forward returns the f32 loss)
    // changes the function's type.
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    func.setType(b.getFunctionType(body.getArgumentTypes(), ret.getOperandTypes()));
    return success();
  }
};

} // namespace
