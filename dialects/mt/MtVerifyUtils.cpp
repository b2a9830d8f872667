//===- MtVerifyUtils.cpp - Shared checks of the mt verifiers ---------------===//

#include "dialects/mt/MtVerifyUtils.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/STLExtras.h"

namespace mlir::mt::verify {

LogicalResult expectRank(Operation *op, Value value, int64_t rank, StringRef what, StringRef layout) {
  if (tensorOf(value).getRank() == rank)
    return success();
  return op->emitOpError() << what << " must have rank " << rank << " (" << layout << "), got " << value.getType();
}

LogicalResult expectShape(Operation *op, Value value, ArrayRef<int64_t> shape, StringRef what) {
  if (shapeOf(value) == shape)
    return success();
  InFlightDiagnostic diag = op->emitOpError() << what << " must have shape [";
  llvm::interleave(shape, diag, ", ");
  return diag << "], got " << value.getType();
}

LogicalResult expectSameElementType(Operation *op, ArrayRef<std::pair<Value, StringRef>> values) {
  Type expected = elementOf(values.front().first);
  for (auto [value, name] : values.drop_front())
    if (elementOf(value) != expected)
      return op->emitOpError() << name << " has element type " << elementOf(value) << " but "
                               << values.front().second << " has " << expected
                               << "; insert an mt.cast to mix precisions";
  return success();
}

LogicalResult expectPositive(Operation *op, int64_t value, StringRef name) {
  if (value > 0)
    return success();
  return op->emitOpError() << name << " must be positive, got " << value;
}

LogicalResult expectProbability(Operation *op, double value, StringRef name) {
  if (value >= 0.0 && value < 1.0)
    return success();
  return op->emitOpError() << name << " must be in [0, 1), got " << value;
}

uint64_t saturatingProduct(std::initializer_list<uint64_t> factors) {
  uint64_t product = 1;
  for (uint64_t factor : factors)
    if (__builtin_mul_overflow(product, factor, &product))
      return UINT64_MAX;
  return product;
}

} // namespace mlir::mt::verify
