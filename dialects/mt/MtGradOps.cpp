//===- MtGradOps.cpp - Verifiers and FLOP counts of the gradient ops ------===//

#include "dialects/mt/MtOps.h"
#include "dialects/mt/MtVerifyUtils.h"

#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::mt;
using namespace mlir::mt::verify;

//===----------------------------------------------------------------------===//
// Linears
//===----------------------------------------------------------------------===//

/// mt.linear_grad_input's operands and result (and mt.linear_grad_input_gelu's): dy [..., out], weight [out, in],
/// dx [..., in], all of one element type.
static LogicalResult verifyLinearGradInput(Operation *op, Value dy, Value weight, Value dx, StringRef dxName) {
  if (tensorOf(dy).getRank() < 2)
    return op->emitOpError() << "dy must have rank >= 2 ([..., out]), got " << dy.getType();
  if (failed(expectRank(op, weight, 2, "weight", "[out, in]")))
    return failure();
  int64_t out = shapeOf(weight)[0], in = shapeOf(weight)[1];
  if (shapeOf(dy).back() != out)
    return op->emitOpError() << "dy " << dy.getType() << " must end in out = " << out << " (weight's rows)";
  SmallVector<int64_t> expected(shapeOf(dy).drop_back());
  expected.push_back(in);
  if (failed(expectShape(op, dx, expected, dxName)))
    return failure();
  return expectSameElementType(op, {{dy, "dy"}, {weight, "weight"}, {dx, dxName}});
}

static uint64_t linearGradInputFlops(Value dy, Value weight) {
  return saturatingProduct({2, static_cast<uint64_t>(numElements(dy)), static_cast<uint64_t>(shapeOf(weight)[1])});
}

LogicalResult LinearGradInputOp::verify() { return verifyLinearGradInput(*this, getDy(), getWeight(), getDx(), "dx"); }

uint64_t LinearGradInputOp::getForwardFlops() { return linearGradInputFlops(getDy(), getWeight()); }

LogicalResult LinearGradInputGeluOp::verify() {
  return verifyLinearGradInput(*this, getDy(), getWeight(), getDpre(), "dpre");
}

uint64_t LinearGradInputGeluOp::getForwardFlops() { return linearGradInputFlops(getDy(), getWeight()); }

LogicalResult LinearGradWeightOp::verify() {
  if (tensorOf(getDy()).getRank() < 2 || tensorOf(getX()).getRank() != tensorOf(getDy()).getRank())
    return emitOpError() << "needs dy [..., out] and x [..., in] of one rank";
  if (shapeOf(getDy()).drop_back() != shapeOf(getX()).drop_back())
    return emitOpError() << "dy " << getDy().getType() << " and x " << getX().getType()
                         << " must agree in their leading dimensions";
  if (failed(expectShape(*this, getDweight(), {shapeOf(getDy()).back(), shapeOf(getX()).back()}, "dweight")))
    return failure();
  return expectSameElementType(*this, {{getDy(), "dy"}, {getX(), "x"}, {getDweight(), "dweight"}});
}

uint64_t LinearGradWeightOp::getForwardFlops() {
  return saturatingProduct(
      {2, static_cast<uint64_t>(numElements(getDy())), static_cast<uint64_t>(shapeOf(getX()).back())});
}

LogicalResult SumRowsOp::verify() {
  if (tensorOf(getX()).getRank() < 1)
    return emitOpError() << "x must have at least one dimension, got " << getX().getType();
  if (failed(expectShape(*this, getResult(), {shapeOf(getX()).back()}, "result")))
    return failure();
  return expectSameElementType(*this, {{getX(), "x"}, {getResult(), "result"}});
}

LogicalResult PoolerGradOp::verify() {
  if (failed(expectRank(*this, getX(), 3, "x", "[batch, seq, hidden]")) ||
      failed(expectRank(*this, getWeight(), 2, "weight", "[out, hidden]")) ||
      failed(expectShape(*this, getDy(), {shapeOf(getX())[0], shapeOf(getWeight())[0]}, "dy")))
    return failure();
  if (getDy().getType() != getOut().getType())
    return emitOpError() << "dy " << getDy().getType() << " and out " << getOut().getType() << " must match";
  if (getDx().getType() != getX().getType() || getDweight().getType() != getWeight().getType())
    return emitOpError() << "dx and dweight must have the types of x and weight";
  if (failed(expectShape(*this, getDbias(), {shapeOf(getWeight())[0]}, "dbias")))
    return failure();
  return expectSameElementType(*this, {{getDy(), "dy"}, {getX(), "x"}, {getWeight(), "weight"}});
}

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingGradOp::verify() {
  return verify::embedding(*this, getIds(), getDtable(), "dtable", getDy(), "dy");
}

LogicalResult PositionEmbeddingGradOp::verify() {
  if (failed(expectRank(*this, getDy(), 3, "dy", "[batch, seq, hidden]")) ||
      failed(expectRank(*this, getDtable(), 2, "dtable", "[max_positions, hidden]")))
    return failure();
  if (shapeOf(getDtable())[1] != shapeOf(getDy())[2] || shapeOf(getDtable())[0] < shapeOf(getDy())[1])
    return emitOpError() << "dtable " << getDtable().getType() << " must be [>= seq, hidden] for dy "
                         << getDy().getType();
  return expectSameElementType(*this, {{getDy(), "dy"}, {getDtable(), "dtable"}});
}

LogicalResult RelativePositionBiasGradOp::verify() {
  int64_t buckets = static_cast<int64_t>(getNumBuckets());
  if (failed(expectRank(*this, getDbias(), 3, "dbias", "[heads, q_seq, kv_seq]")) ||
      failed(expectShape(*this, getDtable(), {buckets, shapeOf(getDbias())[0]}, "dtable")) ||
      failed(verify::relativeBuckets(*this, buckets, static_cast<int64_t>(getMaxDistance()), getBidirectional())))
    return failure();
  return expectSameElementType(*this, {{getDbias(), "dbias"}, {getDtable(), "dtable"}});
}

//===----------------------------------------------------------------------===//
// Attention, activations, loss
//===----------------------------------------------------------------------===//

LogicalResult AttentionGradOp::verify() {
  if (failed(verify::attention(*this, {getQuery(), getKey(), getValue(), getMask(), getBias(),
                                       stringifyAttnMaskType(getMaskType()), static_cast<int64_t>(getNumHeads()),
                                       static_cast<int64_t>(getNumQueryGroups()),
                                       getSoftmaxScale().convertToDouble(), getDropout().convertToDouble()})))
    return failure();
  if (getDout().getType() != getQuery().getType() || getOut().getType() != getQuery().getType())
    return emitOpError() << "dout and out must have the query's type " << getQuery().getType();
  if (getDquery().getType() != getQuery().getType() || getDkey().getType() != getKey().getType() ||
      getDvalue().getType() != getValue().getType())
    return emitOpError() << "dquery, dkey and dvalue must have the types of query, key and value";
  if (static_cast<bool>(getBias()) != static_cast<bool>(getDbias()))
    return emitOpError() << "has a dbias result exactly when it has a bias operand";
  if (getBias() && getDbias().getType() != getBias().getType())
    return emitOpError() << "dbias must have the bias's type " << getBias().getType();
  return success();
}

uint64_t AttentionGradOp::getForwardFlops() {
  // Recomputing the scores, then dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K and dK = dSᵀ·Q: five matmuls of the two the
  // forward has.
  ArrayRef<int64_t> q = shapeOf(getQuery()), k = shapeOf(getKey());
  return saturatingProduct({10, static_cast<uint64_t>(q[0]), static_cast<uint64_t>(q[2]), static_cast<uint64_t>(q[1]),
                            static_cast<uint64_t>(k[1]), static_cast<uint64_t>(q[3])});
}

LogicalResult SwigluGradOp::verify() {
  if (tensorOf(getX()).getRank() < 1)
    return emitOpError() << "x must have at least one dimension, got " << getX().getType();
  if (shapeOf(getX()).back() % 2 != 0)
    return emitOpError() << "x " << getX().getType() << " must have an even last dimension";
  SmallVector<int64_t> expected(shapeOf(getX()));
  expected.back() /= 2;
  if (failed(expectShape(*this, getDy(), expected, "dy")))
    return failure();
  return expectSameElementType(*this, {{getDy(), "dy"}, {getX(), "x"}});
}

LogicalResult CrossEntropyGradOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  if (logits.size() < 2)
    return emitOpError() << "logits must have rank >= 2 ([..., vocab]), got " << getLogits().getType();
  if (failed(expectShape(*this, getLabels(), logits.drop_back(), "labels")))
    return failure();
  if (getLossMask() && failed(expectShape(*this, getLossMask(), logits.drop_back(), "loss_mask")))
    return failure();
  if (getDlogits().getType() != getLogits().getType())
    return emitOpError() << "dlogits must have the logits' type " << getLogits().getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Head views
//===----------------------------------------------------------------------===//

LogicalResult MergeQkvOp::verify() {
  ArrayRef<int64_t> q = shapeOf(getQuery()), k = shapeOf(getKey());
  if (q.size() != 4 || getKey().getType() != getValue().getType() || k.size() != 4 || k[0] != q[0] ||
      k[1] != q[1] || k[3] != q[3] || q[2] % k[2] != 0)
    return emitOpError() << "needs query [b, s, heads, d] and key, value [b, s, groups, d] with groups dividing heads";
  if (failed(expectShape(*this, getResult(), {q[0], q[1], (q[2] + 2 * k[2]) * q[3]}, "result")))
    return failure();
  return expectSameElementType(*this, {{getQuery(), "query"}, {getKey(), "key"}, {getResult(), "result"}});
}

LogicalResult MergeKvOp::verify() {
  ArrayRef<int64_t> k = shapeOf(getKey());
  if (k.size() != 4 || getKey().getType() != getValue().getType())
    return emitOpError() << "needs key and value of one type [b, s, groups, d]";
  if (failed(expectShape(*this, getResult(), {k[0], k[1], 2 * k[2] * k[3]}, "result")))
    return failure();
  return expectSameElementType(*this, {{getKey(), "key"}, {getResult(), "result"}});
}

LogicalResult GradAccumulateOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param = symbolTable.lookupNearestSymbolFrom<ParamOp>(*this, getNameAttr());
  if (!param)
    return emitOpError() << "refers to " << getNameAttr() << ", which is not declared by an mt.param";
  if (param.getType() != getGradient().getType())
    return emitOpError() << "accumulates " << getGradient().getType() << " into parameter " << getNameAttr()
                         << " of type " << param.getType();
  return success();
}

LogicalResult RopeGradOp::verify() {
  return verify::rope(*this, getDy(), getBase().convertToDouble(), static_cast<int64_t>(getRotaryDim()));
}

LogicalResult LayerNormGradOp::verify() {
  return verify::norm(*this, getX(), getWeight(), getEpsilon().convertToDouble());
}

LogicalResult RmsNormGradOp::verify() {
  return verify::norm(*this, getX(), getWeight(), getEpsilon().convertToDouble());
}
