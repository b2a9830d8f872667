//===- MtTraits.h - Native op traits of the mt dialect ---------*- C++ -*-===//

#ifndef MEGATRON_DIALECTS_MT_MTTRAITS_H
#define MEGATRON_DIALECTS_MT_MTTRAITS_H

#include "mlir/IR/OpDefinition.h"

namespace mlir {
namespace mt {
/// Emits an error on `op` unless every tensor operand and result has a static shape.
LogicalResult verifyStaticShapes(Operation *op);
} // namespace mt

namespace OpTrait {
/// The compiler plans memory, FLOPs and sharding from shapes, so mt ops accept static shapes only.
template <typename ConcreteType>
class MtStaticShapes : public TraitBase<ConcreteType, MtStaticShapes> {
public:
  static LogicalResult verifyTrait(Operation *op) { return mt::verifyStaticShapes(op); }
};
} // namespace OpTrait
} // namespace mlir

#endif // MEGATRON_DIALECTS_MT_MTTRAITS_H
