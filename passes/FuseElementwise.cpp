//===- FuseElementwise.cpp - Elementwise chains into one op ---------------===//
//
// --mt-fuse-elementwise folds an elementwise op into the op before it when nothing else needs the intermediate,
// so that no kernel writes it and none reads it back:
// - a dropout whose only use is a residual add becomes one mt.dropout_add (and the memory planner has one
//   activation less to place);
// - a linear whose result feeds one tanh GeLU (and, in the backward, that GeLU's gradient as its input) becomes
//   one mt.linear_gelu with two results, the pre-activation and the activation: cuBLASLt's GELU_AUX(_BIAS)
//   epilogue writes both from the GEMM;
// - a linear's input gradient whose only use is a tanh GeLU gradient (as its dy) becomes one
//   mt.linear_grad_input_gelu: cuBLASLt's DGELU epilogue scales the product by gelu'(pre) before storing it.
// A forward-only function (@forward, run for validation and generation) has no GeLU gradient: its linear_gelu's
// pre-activation is then unused, and still written. One op form means one cuBLASLt epilogue and shape per layer in
// every program, the evaluation pays one write per MLP (still a read less than the unfused pair), and the memory
// planner gives the unused buffer the one step that writes it, so the activation arena, which train_step sizes,
// does not grow (the GPT of fuse-elementwise.test: identical arenas).
// Runs after autodiff: the fused ops have no gradient rules, and the backward already holds the gradients of the
// ops they replace, so nothing there changes beyond the fusions themselves.
//
// Only the tanh GeLU is fused. cublasLt.h (CUDA 13) says no more than "GELU" for CUBLASLT_EPILOGUE_GELU*; the
// tanh form is what PyTorch states for the op that reaches that epilogue (torch._decomp's _addmm_activation:
// `aten.gelu(out, approximate="tanh")` on CUDA) and what Megatron's fused bias-GeLU computes; the exact (erf)
// GeLU has no cuBLASLt epilogue and stays a kernel of its own.
//
// The GeLU fusions also need what cuBLASLt needs of the epilogue's aux matrix (cublasLt.h,
// CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD): a leading dimension, here the GeLU's width, divisible by 8, and f32 or
// 16-bit elements. Where either fails the pair stays unfused, so a fused plan always has an epilogue that
// cuBLASLt takes.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::mt {
#define GEN_PASS_DEF_MTFUSEELEMENTWISE
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using namespace mlir::mt;

namespace {

/// Whether cuBLASLt's GELU epilogues can write (or read) `pre` as their aux matrix: f32, bf16 or f16 elements and
/// a row width divisible by 8 (the aux leading dimension's requirement).
bool geluEpilogueApplies(Value pre) {
  auto type = cast<RankedTensorType>(pre.getType());
  Type element = type.getElementType();
  return (element.isF32() || element.isBF16() || element.isF16()) && type.getRank() > 0 &&
         type.getShape().back() % 8 == 0;
}

bool isTanh(GeluApproximation approximation) { return approximation == GeluApproximation::Tanh; }

/// The tanh GeLU of a linear whose result has no other use than that GeLU and the backward's reads of it as the
/// GeLU's input (gelu_grad's x, linear_grad_input_gelu's pre); null when the linear cannot be fused.
GeluOp fusableGelu(LinearOp linear) {
  GeluOp gelu;
  for (OpOperand &use : linear.getResult().getUses()) {
    Operation *user = use.getOwner();
    if (auto g = dyn_cast<GeluOp>(user); g && !gelu && isTanh(g.getApproximation())) {
      gelu = g;
      continue;
    }
    if (auto grad = dyn_cast<GeluGradOp>(user);
        grad && use.getOperandNumber() == 1 && grad.getDy() != grad.getX() && isTanh(grad.getApproximation()))
      continue;
    if (auto grad = dyn_cast<LinearGradInputGeluOp>(user); grad && &use == &grad.getPreMutable())
      continue;
    return GeluOp();
  }
  return gelu && geluEpilogueApplies(linear.getResult()) ? gelu : GeluOp();
}

/// The tanh GeLU gradient that is the only use of a linear's input gradient, as its dy; null otherwise.
GeluGradOp fusableGeluGrad(LinearGradInputOp gradInput) {
  if (!gradInput->hasOneUse())
    return GeluGradOp();
  auto grad = dyn_cast<GeluGradOp>(*gradInput->getUsers().begin());
  if (!grad || grad.getDy() != gradInput.getDx() || grad.getX() == gradInput.getDx() ||
      !isTanh(grad.getApproximation()) || !geluEpilogueApplies(grad.getX()))
    return GeluGradOp();
  return grad;
}

void fuseDropoutAdds(Operation *root) {
  SmallVector<std::pair<DropoutOp, AddOp>> pairs;
  root->walk([&](DropoutOp dropout) {
    if (!dropout->hasOneUse())
      return;
    if (auto add = dyn_cast<AddOp>(*dropout->getUsers().begin()))
      if (add.getLhs() != add.getRhs()) // x + x would need the dropout's output twice
        pairs.push_back({dropout, add});
  });
  for (auto [dropout, add] : pairs) {
    Value residual = add.getLhs() == dropout.getResult() ? add.getRhs() : add.getLhs();
    OpBuilder builder(add);
    auto fused = builder.create<DropoutAddOp>(add.getLoc(), add.getType(), dropout.getX(), residual,
                                              dropout.getRateAttr(), dropout.getRngStreamAttr(),
                                              dropout.getShardDimAttr());
    add.getResult().replaceAllUsesWith(fused.getResult());
    add.erase();
    dropout.erase();
  }
}

void fuseLinearGelus(Operation *root) {
  SmallVector<std::pair<LinearOp, GeluOp>> pairs;
  root->walk([&](LinearOp linear) {
    if (GeluOp gelu = fusableGelu(linear))
      pairs.push_back({linear, gelu});
  });
  for (auto [linear, gelu] : pairs) {
    // At the linear: its operands dominate it, and the GeLU's users come after the GeLU, so after it too.
    OpBuilder builder(linear);
    auto fused = builder.create<LinearGeluOp>(gelu.getLoc(), linear.getType(), gelu.getType(), linear.getX(),
                                              linear.getWeight(), linear.getBias());
    gelu.getResult().replaceAllUsesWith(fused.getResult());
    gelu.erase();
    linear.getResult().replaceAllUsesWith(fused.getPre());
    linear.erase();
  }
}

void fuseLinearGradInputGelus(Operation *root) {
  SmallVector<std::pair<LinearGradInputOp, GeluGradOp>> pairs;
  root->walk([&](LinearGradInputOp gradInput) {
    if (GeluGradOp grad = fusableGeluGrad(gradInput))
      pairs.push_back({gradInput, grad});
  });
  for (auto [gradInput, grad] : pairs) {
    // At the GeLU gradient: pre is one of its operands, and dy and the weight dominate the input gradient before it.
    OpBuilder builder(grad);
    auto fused = builder.create<LinearGradInputGeluOp>(grad.getLoc(), grad.getType(), gradInput.getDy(),
                                                       gradInput.getWeight(), grad.getX());
    grad.getResult().replaceAllUsesWith(fused.getDpre());
    grad.erase();
    gradInput.erase();
  }
}

struct MtFuseElementwisePass : mt::impl::MtFuseElementwiseBase<MtFuseElementwisePass> {
  using MtFuseElementwiseBase::MtFuseElementwiseBase;

  void runOnOperation() override {
    fuseDropoutAdds(getOperation());
    // The backward's fusion first: the forward's then sees the gradient's read of pre as a fused op's.
    fuseLinearGradInputGelus(getOperation());
    fuseLinearGelus(getOperation());
  }
};

} // namespace
