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

def Mt_ShardingOpInterface : OpInterface<"ShardingOpInterface"> {
  let cppNamespace = "::mlir::mt";
  let description = [{
    How an op runs on a tensor-parallel group: its rule asks the sharding pass for its operands in the layouts it
    can use (the pass inserts the collectives that get them there), builds the op's local form (local shapes,
    local head counts, the offsets of its shard) and reports its results' layouts. The pass
    (passes/Shard.cpp) knows no op; the rules live in dialects/mt/MtSharding.cpp. An op without this interface
    runs replicated: whole inputs, whole outputs, on every rank.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds this op's local form through `rewriter` (its operands are the whole-model values; ask for them
        with `rewriter.get`) and records its results with `rewriter.set`.
      }], "::mlir::LogicalResult", "shard", (ins "::mlir::mt::ShardingRewriter &":$rewriter)>,
    InterfaceMethod<[{
        The layout this op would like operand `operand` to arrive in, so that its producer can choose it (a
        column-parallel linear feeding `mt.swiglu` splits its gate and up halves separately). None: no wish.
      }], "std::optional<::mlir::mt::Layout>", "getPreferredOperandLayout", (ins "unsigned":$operand,
          "int64_t":$ranks), [{}], [{ return std::nullopt; }]>
  ];
}

#endif // MT_INTERFACES_TD
