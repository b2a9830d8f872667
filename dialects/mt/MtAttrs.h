//===- MtAttrs.h - Attributes and enums of the mt dialect ------*- C++ -*-===//

#ifndef MEGATRON_DIALECTS_MT_MTATTRS_H
#define MEGATRON_DIALECTS_MT_MTATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/OpImplementation.h"

#include "dialects/mt/MtEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/mt/MtAttrs.h.inc"

#endif // MEGATRON_DIALECTS_MT_MTATTRS_H
