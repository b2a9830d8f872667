//===- MtOps.h - Operations of the mt dialect ------------------*- C++ -*-===//

#ifndef MEGATRON_DIALECTS_MT_MTOPS_H
#define MEGATRON_DIALECTS_MT_MTOPS_H

#include "dialects/mt/MtAttrs.h"
#include "dialects/mt/MtDialect.h"
#include "dialects/mt/MtTraits.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/mt/MtInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/mt/MtOps.h.inc"

#endif // MEGATRON_DIALECTS_MT_MTOPS_H
