//===- MtInterfaces.td - Op interfaces of the mt dialect -------*- tablegen -*-===//

#ifndef MT_INTERFACES_TD
#define MT_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Mt_FlopCountOpInterface : OpInterface<"FlopCountOpInterface"> {
  let cppNamespace = "::mlir::mt";
  let description = [{
    An op that does matrix multiplications reports how many floating-point operations its forward pass costs,
    counting a multiply-add as 2. Megatron-LM's FLOP formula counts exactly these (linears, the two batched
    matmuls of attention and the logits) and takes the backward pass as twice the forward, so the report, the
    planner and megatron-run all derive their FLOP figures from this one method.
  }];
  let methods = [
    InterfaceMethod<"FLOPs of one forward execution of this op.", "uint64_t", "getForwardFlops">
  ];
}

def Mt_AutodiffOpInterface : OpInterface<"AutodiffOpInterface"> {
  let cppNamespace = "::mlir::mt";
  let description = [{
    A differentiable op builds its own backward: given the gradients of its results, it emits the ops that compute
    the gradients of its operands. The autodiff pass (passes/Autodiff.cpp) is generic over this interface, so a
    new op brings its derivative with it. The implementations live in dialects/mt/MtGradients.cpp.
  }];
  let methods = [
    InterfaceMethod<[{
        Emits, at the builder's insertion point, the gradients of the operands. `resultGrads` has one entry per
        result, null for a result that does not reach the loss (at least one is set). On success `operandGrads`
        holds one entry per operand: its gradient, or null for an operand that is not differentiable (token ids,
        labels, masks).
      }], "::mlir::LogicalResult", "buildGradients",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

#endif // MT_INTERFACES_TD
