//===- MtDialect.h - The mt dialect ----------------------------*- C++ -*-===//

#ifndef MEGATRON_DIALECTS_MT_MTDIALECT_H
#define MEGATRON_DIALECTS_MT_MTDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/mt/MtDialect.h.inc"

#endif // MEGATRON_DIALECTS_MT_MTDIALECT_H
