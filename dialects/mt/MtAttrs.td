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

#endif // MT_ATTRS_TD
