//===- Passes.h - The passes of the Megatron compiler ----------*- C++ -*-===//

#ifndef MEGATRON_PASSES_PASSES_H
#define MEGATRON_PASSES_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::mt {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::mt

#endif // MEGATRON_PASSES_PASSES_H
