//===- MtDialect.td - The mt dialect ---------------------------*- tablegen -*-===//
//
// `mt` describes transformer language models at the level a Megatron-LM user thinks in: embeddings, norms,
// linears, attention and the loss. Every later stage of the compiler (autodiff, sharding, precision, memory
// planning, code generation) rewrites or lowers these ops, so they carry exactly the facts those stages need:
// static shapes, dtypes, parameter names and their initialisation.
//
//===----------------------------------------------------------------------===//

#ifndef MT_DIALECT_TD
#define MT_DIALECT_TD

include "mlir/IR/OpBase.td"

def Mt_Dialect : Dialect {
  let name = "mt";
  let cppNamespace = "::mlir::mt";
  let summary = "Transformer model description: the input language of the Megatron compiler";
  let description = [{
    A model is a `builtin.module` holding `mt.param` declarations (named the way a checkpoint names them) and a
    `func.func` whose body computes the training loss from one micro-batch of data with `mt` ops.
  }];
  let useDefaultAttributePrinterParser = 1;
  // Checks the `mt.*` attributes a model module carries (see MtDialect.cpp).
  let hasOperationAttrVerify = 1;
  // Checks `mt.input`, the name of a model function's argument (see MtDialect.cpp).
  let hasRegionArgAttrVerify = 1;
  // mt defines no result attributes; any `mt.*` one is a mistake.
  let hasRegionResultAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

class Mt_Op<string mnemonic, list<Trait> traits = []> : Op<Mt_Dialect, mnemonic, traits>;

#endif // MT_DIALECT_TD
