//===- MtVerifyUtils.h - Shared checks of the mt verifiers -----*- C++ -*-===//
//
// Each helper emits one message that names the operand, what was expected and what it got. Private to
// dialects/mt.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_DIALECTS_MT_MTVERIFYUTILS_H
#define MEGATRON_DIALECTS_MT_MTVERIFYUTILS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

namespace mlir::mt::verify {

inline RankedTensorType tensorOf(Value v) { return cast<RankedTensorType>(v.getType()); }
inline ArrayRef<int64_t> shapeOf(Value v) { return tensorOf(v).getShape(); }
inline Type elementOf(Value v) { return tensorOf(v).getElementType(); }
inline int64_t numElements(Value v) { return tensorOf(v).getNumElements(); }

/// Checks that `value` has `rank` dimensions; `what` names it and `layout` spells the expected dimensions.
LogicalResult expectRank(Operation *op, Value value, int64_t rank, StringRef what, StringRef layout);
LogicalResult expectShape(Operation *op, Value value, ArrayRef<int64_t> shape, StringRef what);
/// All float operands and results of an mt op compute in one element type; casts are explicit (mt.cast).
LogicalResult expectSameElementType(Operation *op, ArrayRef<std::pair<Value, StringRef>> values);
LogicalResult expectPositive(Operation *op, int64_t value, StringRef name);
LogicalResult expectProbability(Operation *op, double value, StringRef name);

} // namespace mlir::mt::verify

#endif // MEGATRON_DIALECTS_MT_MTVERIFYUTILS_H
