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

// Checks shared by a forward op and its gradient op (defined in MtOps.cpp).

/// An embedding table [vocab, hidden] and the activations [ids..., hidden] it is looked up into (or scattered from).
LogicalResult embedding(Operation *op, Value ids, Value table, StringRef tableName, Value rows, StringRef rowsName);
/// RoPE on x [batch, seq, heads, head_dim]: an even rotary_dim <= head_dim and a base > 1.
LogicalResult rope(Operation *op, Value x, double base, int64_t rotaryDim);
/// A norm over the last dimension of x with a [hidden] weight and a positive epsilon.
LogicalResult norm(Operation *op, Value x, Value weight, double epsilon);
/// T5's bucketing: at least two buckets per direction (an even count when bidirectional) and a max_distance
/// beyond the exactly represented distances.
LogicalResult relativeBuckets(Operation *op, int64_t buckets, int64_t maxDistance, bool bidirectional);
/// Core attention's operands and attributes (see mt.attention).
struct AttentionOperands {
  Value query, key, value, mask, bias;
  StringRef maskType; // "causal", "bidirectional" or "padding"
  int64_t heads, groups;
  double scale, dropout;
};
LogicalResult attention(Operation *op, const AttentionOperands &a);

/// The product of the factors, or UINT64_MAX if it does not fit: a FLOP count saturates rather than wraps, so
/// the analysis reports an overflow instead of a small wrong number.
uint64_t saturatingProduct(std::initializer_list<uint64_t> factors);

} // namespace mlir::mt::verify

#endif // MEGATRON_DIALECTS_MT_MTVERIFYUTILS_H
