//===- MtGradients.cpp - The backward of every mt op -----------------------===//
//
// AutodiffOpInterface::buildGradients for each differentiable op: given the gradients of the results, emit the
// gradients of the operands (null for token ids, labels and masks). The autodiff pass sums the gradients of a
// value used more than once and seeds the loss.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::mt;

namespace {
/// The gradient of a result that does not reach the loss is zero.
Value gradOrZeros(OpBuilder &b, Location loc, Value grad, Value result) {
  if (grad)
    return grad;
  return b.create<FillOp>(loc, result.getType(), b.getF64FloatAttr(0.0), /*loss_seed=*/nullptr);
}

/// The attributes that say how a sharded op sits in its tensor-parallel group (set by --mt-shard). Its gradient op
/// needs the same placement: the vocabulary rows it owns, the sequence block, the heads, the dropout indices.
void copyShardingAttrs(Operation *forward, Operation *gradient) {
  for (StringRef name : {"vocab_shard", "sequence_shard", "head_shard", "vocab_parallel", "shard_dim"})
    if (Attribute value = forward->getAttr(name))
      gradient->setAttr(name, value);
}

/// Sets the gradients of an op with operands (x, weight[, bias]) from an op returning (dx, dweight[, dbias]).
void setGrads(SmallVectorImpl<Value> &operandGrads, ValueRange grads) {
  operandGrads.assign(grads.begin(), grads.end());
}
} // namespace

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  auto dtable = b.create<EmbeddingGradOp>(getLoc(), getTable().getType(), getIds(), resultGrads[0]);
  copyShardingAttrs(*this, dtable);
  operandGrads.assign({Value(), dtable});
  return success();
}

LogicalResult AddPositionEmbeddingOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                                     SmallVectorImpl<Value> &operandGrads) {
  auto dtable = b.create<PositionEmbeddingGradOp>(getLoc(), getTable().getType(), resultGrads[0]);
  copyShardingAttrs(*this, dtable);
  operandGrads.assign({resultGrads[0], dtable});
  return success();
}

LogicalResult RopeOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<RopeGradOp>(getLoc(), getType(), resultGrads[0], getBaseAttr(), getRotaryDimAttr())});
  return success();
}

LogicalResult RelativePositionBiasOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<RelativePositionBiasGradOp>(getLoc(), getTable().getType(), resultGrads[0],
                                                       getNumBucketsAttr(), getMaxDistanceAttr(),
                                                       getBidirectionalAttr())});
  return success();
}

//===----------------------------------------------------------------------===//
// Norms and linears
//===----------------------------------------------------------------------===//

LogicalResult LayerNormOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  Type w = getWeight().getType();
  auto grad = b.create<LayerNormGradOp>(getLoc(), TypeRange{getX().getType(), w, w}, resultGrads[0], getX(),
                                        getWeight(), getEpsilonAttr());
  setGrads(operandGrads, grad.getResults());
  return success();
}

LogicalResult RmsNormOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<RmsNormGradOp>(getLoc(), TypeRange{getX().getType(), getWeight().getType()}, resultGrads[0],
                                      getX(), getWeight(), getEpsilonAttr());
  setGrads(operandGrads, grad.getResults());
  return success();
}

LogicalResult LinearOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  Value dy = resultGrads[0];
  // The three gradients are separate ops: the sharding passes treat them differently (dx of a column-parallel
  // linear needs an all-reduce, dW never does) and a scheduler may delay dW to overlap communication.
  Value dx = b.create<LinearGradInputOp>(getLoc(), getX().getType(), dy, getWeight());
  Value dweight = b.create<LinearGradWeightOp>(getLoc(), getWeight().getType(), dy, getX());
  operandGrads.assign({dx, dweight});
  if (getBias())
    operandGrads.push_back(b.create<SumRowsOp>(getLoc(), getBias().getType(), dy));
  return success();
}

LogicalResult PoolerOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<PoolerGradOp>(getLoc(),
                                     TypeRange{getX().getType(), getWeight().getType(), getBias().getType()},
                                     resultGrads[0], getResult(), getX(), getWeight());
  setGrads(operandGrads, grad.getResults());
  return success();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

LogicalResult SplitQkvOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                         SmallVectorImpl<Value> &operandGrads) {
  Value dq = gradOrZeros(b, getLoc(), resultGrads[0], getQuery());
  Value dk = gradOrZeros(b, getLoc(), resultGrads[1], getKey());
  Value dv = gradOrZeros(b, getLoc(), resultGrads[2], getValue());
  operandGrads.assign({b.create<MergeQkvOp>(getLoc(), getX().getType(), dq, dk, dv)});
  return success();
}

LogicalResult SplitKvOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  Value dk = gradOrZeros(b, getLoc(), resultGrads[0], getKey());
  Value dv = gradOrZeros(b, getLoc(), resultGrads[1], getValue());
  operandGrads.assign({b.create<MergeKvOp>(getLoc(), getX().getType(), dk, dv)});
  return success();
}

LogicalResult SplitHeadsOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                           SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<MergeHeadsOp>(getLoc(), getX().getType(), resultGrads[0])});
  return success();
}

LogicalResult MergeHeadsOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                           SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<SplitHeadsOp>(getLoc(), getX().getType(), resultGrads[0])});
  return success();
}

LogicalResult AttentionOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  Type dbiasType = getBias() ? getBias().getType() : Type();
  auto grad = b.create<AttentionGradOp>(
      getLoc(), getQuery().getType(), getKey().getType(), getValue().getType(), dbiasType, getMaskTypeAttr(),
      resultGrads[0], getResult(), getQuery(), getKey(), getValue(), getMask(), getBias(), getNumHeadsAttr(),
      getNumQueryGroupsAttr(), getSoftmaxScaleAttr(), getDropoutAttr(), getRngStreamAttr(), getHeadShardAttr());
  operandGrads.assign({grad.getDquery(), grad.getDkey(), grad.getDvalue()});
  if (getMask())
    operandGrads.push_back(Value());
  if (getBias())
    operandGrads.push_back(grad.getDbias());
  return success();
}

//===----------------------------------------------------------------------===//
// Activations, residuals, dropout, casts, loss
//===----------------------------------------------------------------------===//

LogicalResult GeluOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<GeluGradOp>(getLoc(), getType(), resultGrads[0], getX(), getApproximationAttr())});
  return success();
}

LogicalResult SwigluOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<SwigluGradOp>(getLoc(), getX().getType(), resultGrads[0], getX())});
  return success();
}

LogicalResult AddOp::buildGradients(OpBuilder &, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({resultGrads[0], resultGrads[0]});
  return success();
}

LogicalResult DropoutOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  // The same mask, so the same op on the same random stream: dx = dy · mask / (1 − rate).
  auto dx = b.create<DropoutOp>(getLoc(), getType(), resultGrads[0], getRateAttr(), getRngStreamAttr(),
                                  getShardDimAttr());
  operandGrads.assign({dx});
  return success();
}

LogicalResult CastOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<CastOp>(getLoc(), getX().getType(), resultGrads[0])});
  return success();
}

LogicalResult CrossEntropyOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                             SmallVectorImpl<Value> &operandGrads) {
  auto dlogits = b.create<CrossEntropyGradOp>(getLoc(), getLogits().getType(), resultGrads[0], getLogits(),
                                              getLabels(), getLossMask());
  copyShardingAttrs(*this, dlogits);
  operandGrads.assign({dlogits, Value()});
  if (getLossMask())
    operandGrads.push_back(Value());
  return success();
}

//===----------------------------------------------------------------------===//
// Collectives: each one's gradient is its conjugate
//===----------------------------------------------------------------------===//

// A send's gradient is received from the chunk it went to; a received value's gradient goes back to its sender.
LogicalResult SendOp::buildGradients(OpBuilder &b, ArrayRef<Value>, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<RecvOp>(getLoc(), getX().getType(), getChunkAttr(), getIndexAttr(),
                                        b.getUnitAttr())
                           .getResult()});
  return success();
}

LogicalResult RecvOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &) {
  Value grad = resultGrads[0];
  if (!grad) // the sender waits for a gradient whether or not this chunk's loss depends on the value
    grad = b.create<FillOp>(getLoc(), getType(), b.getF64FloatAttr(0.0), /*loss_seed=*/nullptr);
  b.create<SendOp>(getLoc(), grad, getChunkAttr(), getIndexAttr(), b.getUnitAttr());
  return success();
}

LogicalResult AllReduceOp::buildGradients(OpBuilder &, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({resultGrads[0]});
  return success();
}

LogicalResult CopyToGroupOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                            SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<AllReduceOp>(getLoc(), getType(), resultGrads[0], getGroupAttr())});
  return success();
}

LogicalResult AllGatherOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  Type type = getX().getType();
  Value dx = getReplicatedGrad()
                 ? b.create<ShardSliceOp>(getLoc(), type, resultGrads[0], getDimAttr(), getGroupAttr()).getResult()
                 : b.create<ReduceScatterOp>(getLoc(), type, resultGrads[0], getDimAttr(), getGroupAttr()).getResult();
  operandGrads.assign({dx});
  return success();
}

LogicalResult ReduceScatterOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<AllGatherOp>(getLoc(), getX().getType(), resultGrads[0], getDimAttr(), getGroupAttr(),
                                             /*replicated_grad=*/UnitAttr())});
  return success();
}

LogicalResult ShardSliceOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                           SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({b.create<AllGatherOp>(getLoc(), getX().getType(), resultGrads[0], getDimAttr(), getGroupAttr(),
                                             /*replicated_grad=*/UnitAttr())});
  return success();
}

LogicalResult AddBiasOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({resultGrads[0], b.create<SumRowsOp>(getLoc(), getBias().getType(), resultGrads[0])});
  return success();
}
