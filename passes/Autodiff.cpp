//===- Autodiff.cpp - Reverse-mode differentiation of @forward -------------===//
//
// Generic over AutodiffOpInterface: this file knows no op's derivative. It clones @forward into @train_step,
// walks its ops backwards asking each for the gradients of its operands, sums the gradients of values used more
// than once, and hands each parameter's gradient to mt.grad_accumulate.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"
#include "megatron/Analysis/ModelFiguresAnalysis.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::mt {
#define GEN_PASS_DEF_MTAUTODIFF
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using namespace mlir::mt;

namespace {

/// The gradients found so far, summing contributions to one value.
class GradientMap {
public:
  explicit GradientMap(OpBuilder &builder) : b(builder) {}

  Value lookup(Value value) const { return grads.lookup(value); }

  void add(Value value, Value grad) {
    Value &slot = grads[value];
    slot = slot ? b.create<AddOp>(grad.getLoc(), value.getType(), slot, grad).getResult() : grad;
  }

private:
  OpBuilder &b;
  DenseMap<Value, Value> grads;
};

struct MtAutodiffPass : mt::impl::MtAutodiffBase<MtAutodiffPass> {
  using MtAutodiffBase::MtAutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      emitError(module.getLoc(), "mt-autodiff: the module has no @forward function to differentiate");
      return signalPassFailure();
    }
    if (module.lookupSymbol("train_step") || module.lookupSymbol("train_step_chunk0")) {
      emitError(module.getLoc(), "mt-autodiff: the module already has a @train_step");
      return signalPassFailure();
    }
    // megatron-model --bf16/--fp16 asks for 16-bit compute; differentiating the f32 model would train in f32
    // without a word, so the missing pass is named here.
    if (auto precision = module->getAttrOfType<StringAttr>("mt.precision"); precision && precision.getValue() != "fp32") {
      bool sixteenBit = false;
      forward.walk([&](mt::CastOp) { sixteenBit = true; });
      if (!sixteenBit) {
        emitError(module.getLoc(), "mt-autodiff: the module asks for ")
            << precision.getValue() << " (mt.precision) but @forward computes in f32: run --mt-mixed-precision "
            << "before --mt-autodiff";
        return signalPassFailure();
      }
    }
    FunctionType type = forward.getFunctionType();
    auto lossType = type.getNumResults() == 1 ? dyn_cast<RankedTensorType>(type.getResult(0)) : RankedTensorType();
    bool scalarLoss = lossType && lossType.getRank() == 0 &&
                      (lossType.getElementType().isF32() || lossType.getElementType().isF64());
    if (!scalarLoss || !forward.getBody().hasOneBlock()) {
      forward.emitError("mt-autodiff: @forward must be one block returning the scalar f32 (or f64) loss, got ")
          << type;
      return signalPassFailure();
    }

    // A module split into pipeline chunks trains chunk by chunk: each @forward_chunk<c> becomes
    // @train_step_chunk<c>, its forward and backward halves separated by mt.backward_start.
    int64_t chunks = pipelineChunks(module);
    for (int64_t chunk = 0; chunks > 1 && chunk < chunks; ++chunk) {
      std::string name = "forward_chunk" + std::to_string(chunk);
      auto chunkForward = module.lookupSymbol<func::FuncOp>(name);
      if (!chunkForward) {
        emitError(module.getLoc(), "mt-autodiff: the module is split into ") << chunks << " pipeline chunks but has no @"
                                                                   << name << " (run --mt-pipeline)";
        return signalPassFailure();
      }
      if (failed(differentiateFunction(module, chunkForward, "train_step_chunk" + std::to_string(chunk),
                                       /*markBackward=*/true)))
        return signalPassFailure();
    }
    if (chunks == 1 && failed(differentiateFunction(module, forward, "train_step", /*markBackward=*/false)))
      return signalPassFailure();
  }

  /// Clones `forward` as `name` and appends its backward.
  LogicalResult differentiateFunction(ModuleOp module, func::FuncOp forward, StringRef name, bool markBackward) {
    auto step = cast<func::FuncOp>(forward->clone());
    step.setName(name);
    module.getBody()->getOperations().insertAfter(Block::iterator(forward), step);
    Block &body = step.getBody().front();
    assignRngStreams(body);

    auto ret = cast<func::ReturnOp>(body.getTerminator());
    OpBuilder b(ret);
    if (markBackward)
      b.create<BackwardStartOp>(ret.getLoc());
    // A pipeline chunk before the last returns nothing: its gradients arrive from the next chunk.
    return differentiate(module, body, ret.getNumOperands() ? ret.getOperand(0) : Value(), b);
  }

  LogicalResult differentiate(ModuleOp module, Block &body, Value loss, OpBuilder &b) {
    GradientMap grads(b);
    int64_t microBatches = 1;
    if (auto attr = module->getAttrOfType<IntegerAttr>(kNumMicroBatchesAttr))
      microBatches = attr.getInt();
    if (loss)
      grads.add(loss, b.create<FillOp>(loss.getLoc(), loss.getType(), b.getF64FloatAttr(1.0 / microBatches), b.getUnitAttr()));

    llvm::StringMap<Value> paramGrads;
    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops)) {
      SmallVector<Value> resultGrads;
      for (Value result : op->getResults())
        resultGrads.push_back(grads.lookup(result));
      // Pipeline messages are differentiated whether or not they reach this chunk's loss: their peers wait for
      // the gradient messages.
      bool message = isa<SendOp>(op) || (isa<RecvOp>(op) && !cast<RecvOp>(op).getGrad());
      if (!message && llvm::none_of(resultGrads, [](Value g) { return static_cast<bool>(g); }))
        continue; // does not reach the loss

      if (auto ref = dyn_cast<ParamRefOp>(op)) {
        Value &slot = paramGrads[ref.getName()];
        slot = slot ? b.create<AddOp>(ref.getLoc(), ref.getType(), slot, resultGrads[0]).getResult() : resultGrads[0];
        continue;
      }
      auto differentiable = dyn_cast<AutodiffOpInterface>(op);
      if (!differentiable)
        return op->emitOpError("mt-autodiff: has no gradient (it does not implement AutodiffOpInterface)");
      SmallVector<Value> operandGrads;
      if (failed(differentiable.buildGradients(b, resultGrads, operandGrads)))
        return failure();
      if (operandGrads.size() != op->getNumOperands())
        return op->emitOpError("mt-autodiff: built ") << operandGrads.size() << " gradients for "
                                                      << op->getNumOperands() << " operands";
      for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads))
        if (grad)
          grads.add(operand, grad);
    }

    for (ParamOp param : module.getOps<ParamOp>())
      if (Value grad = paramGrads.lookup(param.getSymName()))
        b.create<GradAccumulateOp>(param.getLoc(), FlatSymbolRefAttr::get(param.getSymNameAttr()), grad);
    return success();
  }
};

} // namespace
