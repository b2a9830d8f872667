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

#endif // MT_INTERFACES_TD
