//===- MtOps.cpp - Verifiers of the mt dialect's ops -----------------------===//
//
// Each verifier names the operand, the shape it expected and the shape it got, so that an error in a
// hand-written or generated model points straight at the mistake.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtOps.h"
#include "dialects/mt/MtVerifyUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mt;
using namespace mlir::mt::verify;

#include "dialects/mt/MtInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/mt/MtOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//


LogicalResult mlir::mt::verifyStaticShapes(Operation *op) {
  auto check = [&](Type type, StringRef kind, unsigned index) -> LogicalResult {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor)
      return success();
    if (!tensor.hasStaticShape())
      return op->emitOpError() << "needs static shapes, but " << kind << " #" << index << " has type " << type;
    // An empty dimension is never a meaningful model size, and FLOP and memory formulas divide by dimensions.
    if (tensor.getNumElements() == 0)
      return op->emitOpError() << "needs non-empty tensors, but " << kind << " #" << index << " has type " << type;
    return success();
  };
  for (auto [i, type] : llvm::enumerate(op->getOperandTypes()))
    if (failed(check(type, "operand", i)))
      return failure();
  for (auto [i, type] : llvm::enumerate(op->getResultTypes()))
    if (failed(check(type, "result", i)))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

LogicalResult ParamOp::verify() {
  RankedTensorType type = getTensorType();
  if (!type.hasStaticShape())
    return emitOpError() << "parameter '" << getSymName() << "' needs a static shape, got " << type;
  if (!isa<FloatType>(type.getElementType()))
    return emitOpError() << "parameter '" << getSymName() << "' must have a floating-point element type, got "
                         << type.getElementType();
  if (type.getNumElements() == 0)
    return emitOpError() << "parameter '" << getSymName() << "' has no elements: " << type;
  if (getSymName().empty())
    return emitOpError() << "needs a name (an empty symbol cannot be printed back)";
  if (ShardAttr shard = getShardAttr()) {
    if (shard.getDim() >= type.getRank())
      return emitOpError() << "parameter '" << getSymName() << "' is sharded along dim " << shard.getDim()
                           << " but has " << type.getRank() << " dimensions";
    if (shard.getLocalSize() != type.getDimSize(shard.getDim()))
      return emitOpError() << "parameter '" << getSymName() << "' has " << type.getDimSize(shard.getDim())
                           << " indices along dim " << shard.getDim() << " but its shard gives each rank "
                           << shard.getLocalSize();
    if (shard.getNumRanks() != tensorParallelSize(*this))
      return emitOpError() << "parameter '" << getSymName() << "' is sharded over " << shard.getNumRanks()
                           << " ranks but the module's tensor-parallel size is " << tensorParallelSize(*this);
  }
  return success();
}

RankedTensorType ParamOp::getGlobalType() {
  RankedTensorType type = getTensorType();
  ShardAttr shard = getShardAttr();
  if (!shard)
    return type;
  SmallVector<int64_t> shape(type.getShape());
  shape[shard.getDim()] = shard.getSize();
  return type.clone(shape);
}

LogicalResult ParamRefOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *symbol = symbolTable.lookupNearestSymbolFrom(*this, getNameAttr());
  auto param = dyn_cast_or_null<ParamOp>(symbol);
  if (!param)
    return emitOpError() << "refers to " << getNameAttr() << ", which is not declared by an mt.param";
  if (param.getType() != getType())
    return emitOpError() << "has type " << getType() << " but parameter " << getNameAttr() << " is declared as "
                         << param.getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

LogicalResult mlir::mt::verify::embedding(Operation *op, Value ids, Value table, StringRef tableName, Value rows,
                                          StringRef rowsName) {
  if (failed(expectRank(op, table, 2, tableName, "[vocab, hidden]")))
    return failure();
  SmallVector<int64_t> expected(shapeOf(ids));
  expected.push_back(shapeOf(table)[1]);
  if (failed(expectShape(op, rows, expected, rowsName)))
    return failure();
  return expectSameElementType(op, {{table, tableName}, {rows, rowsName}});
}

LogicalResult EmbeddingOp::verify() {
  return verify::embedding(*this, getIds(), getTable(), "table", getResult(), "result");
}

LogicalResult AddPositionEmbeddingOp::verify() {
  if (failed(expectRank(*this, getX(), 3, "x", "[batch, seq, hidden]")) ||
      failed(expectRank(*this, getTable(), 2, "table", "[max_positions, hidden]")))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getX()), table = shapeOf(getTable());
  if (table[1] != x[2])
    return emitOpError() << "table has hidden size " << table[1] << " but x has " << x[2];
  // Under sequence parallelism x is one rank's block: the positions run to the whole sequence.
  int64_t seq = x[1] * (getSequenceShard() ? tensorParallelSize(*this) : 1);
  if (seq > table[0])
    return emitOpError() << "sequence length " << seq << " exceeds the " << table[0]
                         << " positions of the table (--max-position-embeddings)";
  return expectSameElementType(*this, {{getX(), "x"}, {getTable(), "table"}});
}

LogicalResult mlir::mt::verify::rope(Operation *op, Value x, double base, int64_t rotaryDim) {
  if (failed(expectRank(op, x, 4, "x", "[batch, seq, heads, head_dim]")))
    return failure();
  int64_t headDim = shapeOf(x)[3];
  if (rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim > headDim)
    return op->emitOpError() << "rotary_dim must be even and in (0, head_dim = " << headDim << "], got " << rotaryDim;
  if (!(base > 1.0) || !std::isfinite(base))
    return op->emitOpError() << "base must be a finite number greater than 1, got " << base;
  return success();
}

LogicalResult RopeOp::verify() {
  return verify::rope(*this, getX(), getBase().convertToDouble(), static_cast<int64_t>(getRotaryDim()));
}

LogicalResult mlir::mt::verify::relativeBuckets(Operation *op, int64_t buckets, int64_t maxDistance,
                                                bool bidirectional) {
  if (bidirectional && buckets % 2 != 0)
    return op->emitOpError() << "bidirectional num_buckets must be even (half per direction), got " << buckets;
  // The bucketing gives half of its (per-direction) buckets to exact distances; it needs at least one.
  int64_t perDirection = bidirectional ? buckets / 2 : buckets;
  if (perDirection < 2)
    return op->emitOpError() << "num_buckets must be at least " << (bidirectional ? 4 : 2) << ", got " << buckets;
  if (maxDistance <= perDirection / 2)
    return op->emitOpError() << "max_distance must exceed the " << perDirection / 2
                             << " exactly represented distances, got " << maxDistance;
  return success();
}

LogicalResult RelativePositionBiasOp::verify() {
  if (failed(expectRank(*this, getTable(), 2, "table", "[num_buckets, heads]")) ||
      failed(expectRank(*this, getResult(), 3, "result", "[heads, q_seq, kv_seq]")))
    return failure();
  ArrayRef<int64_t> table = shapeOf(getTable()), result = shapeOf(getResult());
  int64_t buckets = static_cast<int64_t>(getNumBuckets());
  if (table[0] != buckets)
    return emitOpError() << "table has " << table[0] << " rows but num_buckets is " << buckets;
  if (result[0] != table[1])
    return emitOpError() << "result has " << result[0] << " heads but the table has " << table[1];
  if (failed(verify::relativeBuckets(*this, buckets, static_cast<int64_t>(getMaxDistance()), getBidirectional())))
    return failure();
  return expectSameElementType(*this, {{getTable(), "table"}, {getResult(), "result"}});
}

//===----------------------------------------------------------------------===//
// Norms and linears
//===----------------------------------------------------------------------===//

LogicalResult mlir::mt::verify::norm(Operation *op, Value x, Value weight, double epsilon) {
  if (tensorOf(x).getRank() < 1)
    return op->emitOpError() << "x must have at least one dimension";
  int64_t hidden = shapeOf(x).back();
  if (failed(expectShape(op, weight, {hidden}, "weight")))
    return failure();
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    return op->emitOpError() << "epsilon must be positive and finite, got " << epsilon;
  return expectSameElementType(op, {{x, "x"}, {weight, "weight"}});
}

LogicalResult LayerNormOp::verify() {
  return verify::norm(*this, getX(), getWeight(), getEpsilon().convertToDouble());
}

LogicalResult RmsNormOp::verify() {
  return verify::norm(*this, getX(), getWeight(), getEpsilon().convertToDouble());
}

/// mt.linear's operands and result (and mt.linear_gelu's, whose `pre` is the linear's result): x [..., in],
/// weight [out, in], an optional bias [out], result [..., out], all of one element type.
static LogicalResult verifyLinear(Operation *op, Value x, Value weight, Value bias, Value result,
                                  StringRef resultName) {
  if (tensorOf(x).getRank() < 2)
    return op->emitOpError() << "x must have rank >= 2 ([..., in]), got " << x.getType();
  if (failed(expectRank(op, weight, 2, "weight", "[out, in]")))
    return failure();
  int64_t in = shapeOf(x).back(), out = shapeOf(weight)[0];
  if (shapeOf(weight)[1] != in)
    return op->emitOpError() << "weight " << weight.getType() << " must be [out, in] with in = " << in
                             << " (the last dimension of x)";
  if (bias && failed(expectShape(op, bias, {out}, "bias")))
    return failure();
  SmallVector<int64_t> expected(shapeOf(x).drop_back());
  expected.push_back(out);
  if (failed(expectShape(op, result, expected, resultName)))
    return failure();
  SmallVector<std::pair<Value, StringRef>> values = {{x, "x"}, {weight, "weight"}, {result, resultName}};
  if (bias)
    values.push_back({bias, "bias"});
  return expectSameElementType(op, values);
}

static uint64_t linearFlops(Value x, Value weight) {
  uint64_t in = shapeOf(x).back(), out = shapeOf(weight)[0];
  return saturatingProduct({2, static_cast<uint64_t>(numElements(x)) / in, in, out});
}

LogicalResult LinearOp::verify() {
  return verifyLinear(*this, getX(), getWeight(), getBias(), getResult(), "result");
}

uint64_t LinearOp::getForwardFlops() { return linearFlops(getX(), getWeight()); }

LogicalResult LinearGeluOp::verify() {
  return verifyLinear(*this, getX(), getWeight(), getBias(), getPre(), "pre");
}

uint64_t LinearGeluOp::getForwardFlops() { return linearFlops(getX(), getWeight()); }

LogicalResult PoolerOp::verify() {
  if (failed(expectRank(*this, getX(), 3, "x", "[batch, seq, hidden]")) ||
      failed(expectRank(*this, getWeight(), 2, "weight", "[out, hidden]")))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getX());
  int64_t out = shapeOf(getWeight())[0];
  if (failed(expectShape(*this, getWeight(), {out, x[2]}, "weight")) ||
      failed(expectShape(*this, getBias(), {out}, "bias")) ||
      failed(expectShape(*this, getResult(), {x[0], out}, "result")))
    return failure();
  return expectSameElementType(
      *this, {{getX(), "x"}, {getWeight(), "weight"}, {getBias(), "bias"}, {getResult(), "result"}});
}

uint64_t PoolerOp::getForwardFlops() {
  ArrayRef<int64_t> x = shapeOf(getX());
  return saturatingProduct({2, static_cast<uint64_t>(x[0]), static_cast<uint64_t>(x[2]),
                            static_cast<uint64_t>(shapeOf(getWeight())[0])});
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Checks that `heads` [batch, seq, count, headDim] views `x` [batch, seq, count·headDim].
static LogicalResult expectHeadsOf(Operation *op, Value x, Value heads, int64_t count, int64_t headDim,
                                   StringRef what) {
  ArrayRef<int64_t> shape = shapeOf(x);
  return expectShape(op, heads, {shape[0], shape[1], count, headDim}, what);
}

LogicalResult SplitQkvOp::verify() {
  if (failed(expectRank(*this, getX(), 3, "x", "[batch, seq, (heads + 2*groups) * head_dim]")))
    return failure();
  int64_t heads = getNumHeads(), groups = getNumQueryGroups(), channels = shapeOf(getX())[2];
  if (failed(expectPositive(*this, heads, "num_heads")) || failed(expectPositive(*this, groups, "num_query_groups")))
    return failure();
  if (heads % groups != 0)
    return emitOpError() << "num_heads (" << heads << ") must be divisible by num_query_groups (" << groups << ")";
  if (channels % (heads + 2 * groups) != 0)
    return emitOpError() << "x has " << channels << " channels, not a multiple of heads + 2*groups = "
                         << heads + 2 * groups;
  int64_t headDim = channels / (heads + 2 * groups);
  if (failed(expectHeadsOf(*this, getX(), getQuery(), heads, headDim, "query")) ||
      failed(expectHeadsOf(*this, getX(), getKey(), groups, headDim, "key")) ||
      failed(expectHeadsOf(*this, getX(), getValue(), groups, headDim, "value")))
    return failure();
  return expectSameElementType(
      *this, {{getX(), "x"}, {getQuery(), "query"}, {getKey(), "key"}, {getValue(), "value"}});
}

LogicalResult SplitKvOp::verify() {
  if (failed(expectRank(*this, getX(), 3, "x", "[batch, seq, 2 * groups * head_dim]")))
    return failure();
  int64_t groups = getNumQueryGroups(), channels = shapeOf(getX())[2];
  if (failed(expectPositive(*this, groups, "num_query_groups")))
    return failure();
  if (channels % (2 * groups) != 0)
    return emitOpError() << "x has " << channels << " channels, not a multiple of 2*groups = " << 2 * groups;
  int64_t headDim = channels / (2 * groups);
  if (failed(expectHeadsOf(*this, getX(), getKey(), groups, headDim, "key")) ||
      failed(expectHeadsOf(*this, getX(), getValue(), groups, headDim, "value")))
    return failure();
  return expectSameElementType(*this, {{getX(), "x"}, {getKey(), "key"}, {getValue(), "value"}});
}

/// split_heads and merge_heads: `flat` [batch, seq, heads·head_dim] and `split` [batch, seq, heads, head_dim] are
/// views of one another; the message names them as the op's input and result.
static LogicalResult verifyHeadView(Operation *op, Value flat, Value split) {
  if (failed(expectRank(op, flat, 3, flat == op->getOperand(0) ? "x" : "result", "[batch, seq, heads * head_dim]")) ||
      failed(expectRank(op, split, 4, split == op->getOperand(0) ? "x" : "result", "[batch, seq, heads, head_dim]")))
    return failure();
  ArrayRef<int64_t> f = shapeOf(flat), s = shapeOf(split);
  if (f[0] != s[0] || f[1] != s[1] || f[2] != s[2] * s[3])
    return op->emitOpError() << "cannot view " << op->getOperand(0).getType() << " as " << op->getResult(0).getType()
                             << ": batch and seq must match and hidden must equal heads * head_dim";
  return expectSameElementType(op, {{op->getOperand(0), "x"}, {op->getResult(0), "result"}});
}

LogicalResult SplitHeadsOp::verify() { return verifyHeadView(*this, getX(), getResult()); }
LogicalResult MergeHeadsOp::verify() { return verifyHeadView(*this, getResult(), getX()); }

LogicalResult mlir::mt::verify::attention(Operation *op, const AttentionOperands &a) {
  if (failed(expectRank(op, a.query, 4, "query", "[batch, q_seq, heads, head_dim]")) ||
      failed(expectRank(op, a.key, 4, "key", "[batch, kv_seq, groups, head_dim]")))
    return failure();
  ArrayRef<int64_t> q = shapeOf(a.query), k = shapeOf(a.key);
  if (a.value.getType() != a.key.getType())
    return op->emitOpError() << "value " << a.value.getType() << " must have the type of key " << a.key.getType();
  if (q[2] != a.heads)
    return op->emitOpError() << "query has " << q[2] << " heads but num_heads is " << a.heads;
  if (k[2] != a.groups)
    return op->emitOpError() << "key and value have " << k[2] << " heads but num_query_groups is " << a.groups;
  if (a.groups <= 0 || a.heads % a.groups != 0)
    return op->emitOpError() << "num_heads (" << a.heads << ") must be a multiple of num_query_groups (" << a.groups
                             << ")";
  if (k[0] != q[0] || k[3] != q[3])
    return op->emitOpError() << "key " << a.key.getType() << " must match query " << a.query.getType()
                             << " in batch and head_dim";
  if (a.maskType == "causal" && q[1] != k[1])
    return op->emitOpError() << "causal attention needs q_seq == kv_seq, got " << q[1] << " and " << k[1];
  bool padding = a.maskType == "padding";
  if (padding && !a.mask)
    return op->emitOpError() << "padding attention needs a mask operand of shape [batch, kv_seq]";
  if (!padding && a.mask)
    return op->emitOpError() << "only padding attention takes a mask operand";
  if (a.mask && failed(expectShape(op, a.mask, {q[0], k[1]}, "mask")))
    return failure();
  if (a.bias && failed(expectShape(op, a.bias, {a.heads, q[1], k[1]}, "bias")))
    return failure();
  if (!(a.scale > 0.0) || !std::isfinite(a.scale))
    return op->emitOpError() << "softmax_scale must be positive and finite, got " << a.scale;
  if (failed(expectProbability(op, a.dropout, "dropout")))
    return failure();
  SmallVector<std::pair<Value, StringRef>> values = {{a.query, "query"}, {a.key, "key"}};
  if (a.bias)
    values.push_back({a.bias, "bias"});
  return expectSameElementType(op, values);
}

LogicalResult AttentionOp::verify() {
  return verify::attention(*this, {getQuery(), getKey(), getValue(), getMask(), getBias(),
                                   stringifyAttnMaskType(getMaskType()), static_cast<int64_t>(getNumHeads()),
                                   static_cast<int64_t>(getNumQueryGroups()), getSoftmaxScale().convertToDouble(),
                                   getDropout().convertToDouble()});
}

uint64_t AttentionOp::getForwardFlops() {
  // Scores (Q·Kᵀ) and the weighted sum (P·V), each 2·q_seq·kv_seq·head_dim per head. Like Megatron-LM's
  // formula, the causal half is not discounted.
  ArrayRef<int64_t> q = shapeOf(getQuery()), k = shapeOf(getKey());
  return saturatingProduct({4, static_cast<uint64_t>(q[0]), static_cast<uint64_t>(q[2]), static_cast<uint64_t>(q[1]),
                            static_cast<uint64_t>(k[1]), static_cast<uint64_t>(q[3])});
}

//===----------------------------------------------------------------------===//
// Activations, dropout, casts, loss
//===----------------------------------------------------------------------===//

LogicalResult SwigluOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getX());
  if (x.empty() || x.back() % 2 != 0)
    return emitOpError() << "x must have an even last dimension ([..., 2*ffn]), got " << getX().getType();
  SmallVector<int64_t> expected(x);
  expected.back() /= 2;
  if (failed(expectShape(*this, getResult(), expected, "result")))
    return failure();
  return expectSameElementType(*this, {{getX(), "x"}, {getResult(), "result"}});
}

LogicalResult DropoutOp::verify() { return expectProbability(*this, getRate().convertToDouble(), "rate"); }

LogicalResult DropoutAddOp::verify() { return expectProbability(*this, getRate().convertToDouble(), "rate"); }

LogicalResult CastOp::verify() {
  if (elementOf(getX()) == elementOf(getResult()))
    return emitOpError() << "casts " << elementOf(getX()) << " to itself";
  return expectShape(*this, getResult(), shapeOf(getX()), "result");
}

LogicalResult CrossEntropyOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  if (logits.size() < 2)
    return emitOpError() << "logits must have rank >= 2 ([..., vocab]), got " << getLogits().getType();
  if (failed(expectShape(*this, getLabels(), logits.drop_back(), "labels")))
    return failure();
  if (getLossMask() && failed(expectShape(*this, getLossMask(), logits.drop_back(), "loss_mask")))
    return failure();
  // Whatever the logits' type, the loss is accumulated and returned in at least f32, as Megatron does (f64 is for
  // gradient checks).
  auto wide = [](Type t) { return t.isF32() || t.isF64(); };
  if (getLossMask() && !wide(elementOf(getLossMask())))
    return emitOpError() << "loss_mask must be f32 or f64, got " << elementOf(getLossMask());
  if (!wide(elementOf(getLoss())))
    return emitOpError() << "the loss must be f32 or f64, got " << elementOf(getLoss());
  return success();
}
