//===- MtAttrs.td - Attributes and enums of the mt dialect -----*- tablegen -*-===//

#ifndef MT_ATTRS_TD
#define MT_ATTRS_TD

include "dialects/mt/MtDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Mt_InitKind : I32EnumAttr<"InitKind", "how a parameter is initialised", [
    I32EnumAttrCase<"Normal", 0, "normal">,
    I32EnumAttrCase<"ScaledNormal", 1, "scaled_normal">,
    I32EnumAttrCase<"Zeros", 2, "zeros">,
    I32EnumAttrCase<"Ones", 3, "ones">]> {
  let cppNamespace = "::mlir::mt";
  let genSpecializedAttr = 0;
}

def Mt_AttnMaskType : I32EnumAttr<"AttnMaskType", "which keys a query may attend to", [
    I32EnumAttrCase<"Causal", 0, "causal">,
    I32EnumAttrCase<"Bidirectional", 1, "bidirectional">,
    I32EnumAttrCase<"Padding", 2, "padding">]> {
  let cppNamespace = "::mlir::mt";
  let genSpecializedAttr = 0;
}
def Mt_AttnMaskTypeAttr : EnumAttr<Mt_Dialect, Mt_AttnMaskType, "mask">;

def Mt_GeluApproximation : I32EnumAttr<"GeluApproximation", "how GeLU is evaluated", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Tanh", 1, "tanh">]> {
  let cppNamespace = "::mlir::mt";
  let genSpecializedAttr = 0;
}
def Mt_GeluApproximationAttr : EnumAttr<Mt_Dialect, Mt_GeluApproximation, "gelu_approximation">;

//===----------------------------------------------------------------------===//
// #mt.init
//===----------------------------------------------------------------------===//

def Mt_InitAttr : AttrDef<Mt_Dialect, "Init"> {
  let mnemonic = "init";
  let summary = "How a parameter is initialised";
  let description = [{
    One of:
    - `normal(STD)`: N(0, STD²), Megatron's `--init-method-std`;
    - `scaled_normal(STD, layers = L)`: N(0, (STD / sqrt(2·L))²), Megatron's init for the output projections of
      attention and MLP (`linear_proj`, `linear_fc2`);
    - `zeros`, `ones`: biases and norm parameters.

    ```mlir
    #mt.init<normal(0.02)>
    #mt.init<scaled_normal(0.02, layers = 24)>
    #mt.init<zeros>
    ```
  }];
  let parameters = (ins "InitKind":$kind, APFloatParameter<"standard deviation">:$std,
                        "int64_t":$numLayers);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "InitKind":$kind, CArg<"double", "0.0">:$std, CArg<"int64_t", "0">:$numLayers), [{
      return $_get($_ctxt, kind, ::llvm::APFloat(std), numLayers);
    }]>
  ];
  let extraClassDeclaration = [{
    /// The standard deviation actually drawn from: STD, or STD / sqrt(2·layers) for scaled_normal; 0 for constants.
    double getEffectiveStd() const;
  }];
}

//===----------------------------------------------------------------------===//
// #mt.shard
//===----------------------------------------------------------------------===//

def Mt_ShardAttr : AttrDef<Mt_Dialect, "Shard"> {
  let mnemonic = "shard";
  let summary = "Which slices of a parameter each tensor-parallel rank holds";
  let description = [{
    Set by `--mt-shard` on an `mt.param` whose tensor is split across the tensor-parallel group: the parameter's
    type is then one rank's local shape, and this attribute says which indices of dimension `dim` (of global
    size `size`) rank r holds: the concatenation of its spans `start+length`, in order. Every rank holds the same
    number of indices. A span held by several ranks is replicated (the key/value heads of a GQA model with fewer
    groups than ranks); its gradient is summed over them after the backward (`mt.all_reduce_grads`).

    ```mlir
    // linear_fc1 of a SwiGLU MLP with ffn 1024 on 2 ranks: each holds its half of the gate and of the up rows.
    #mt.shard<dim 0 of 2048: [0+512, 1024+512], [512+512, 1536+512]>
    ```

    The runtime initialises and checkpoints the global tensor and slices it by these spans, so a checkpoint
    does not depend on the layout it was written from.
  }];
  let parameters = (ins "int64_t":$dim, "int64_t":$size, "int64_t":$spansPerRank,
                        ArrayRefParameter<"int64_t", "start, length pairs, rank by rank">:$spans);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getNumRanks() const { return getSpans().size() / (2 * getSpansPerRank()); }
    /// The (start, length) spans of rank `rank`.
    ::llvm::SmallVector<std::pair<int64_t, int64_t>> getRankSpans(int64_t rank) const;
    /// Indices of dimension `dim` that each rank holds.
    int64_t getLocalSize() const;
  }];
}

#endif // MT_ATTRS_TD
