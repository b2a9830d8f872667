//===- MtSharding.cpp - How each mt op runs on a tensor-parallel group ----===//
//
// ShardingOpInterface for every op that has a parallel form, following Megatron-LM's layout: column-parallel
// linears split their output features, row-parallel ones their input features and sum; attention splits heads;
// the vocabulary is split in the embedding and the loss. A rule asks for its operands in the layouts it can use
// and reports its results' layouts; the pass (passes/Shard.cpp) inserts the collectives in between. Which linear
// is column- and which row-parallel is not written anywhere: it follows from the layout of the input (a linear
// fed a split activation contracts over the split and is row-parallel). Ops without a rule run replicated.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtOps.h"

#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::mt;

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

Layout Layout::split(int64_t dim, SmallVector<SmallVector<Span, 2>> spans) {
  Layout layout = split(dim);
  layout.spans = std::move(spans);
  return layout;
}

bool Layout::hasReplicatedSpans() const {
  for (size_t r = 0; r < spans.size(); ++r)
    for (size_t q = r + 1; q < spans.size(); ++q)
      for (const Span &a : spans[r])
        if (llvm::is_contained(spans[q], a))
          return true;
  return false;
}

SmallVector<Span, 2> Layout::spansOf(int64_t rank, int64_t size, int64_t ranks) const {
  if (!spans.empty())
    return spans[rank];
  int64_t block = size / ranks;
  return {{rank * block, block}};
}

RankedTensorType Layout::localType(RankedTensorType global, int64_t ranks) const {
  if (!isSplit())
    return global;
  SmallVector<int64_t> shape(global.getShape());
  int64_t local = 0;
  for (const Span &span : spansOf(0, shape[dim], ranks))
    local += span.second;
  shape[dim] = local;
  return global.clone(shape);
}

bool Layout::operator==(const Layout &other) const {
  return kind == other.kind && dim == other.dim && spans == other.spans;
}

std::string Layout::str() const {
  switch (kind) {
  case Kind::Replicated:
    return "replicated";
  case Kind::Partial:
    return "partial";
  case Kind::Split:
    break;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "split(" << dim;
  for (auto [r, rankSpans] : llvm::enumerate(spans)) {
    os << (r ? ", [" : ": [");
    for (auto [i, span] : llvm::enumerate(rankSpans))
      os << (i ? ", " : "") << span.first << "+" << span.second;
    os << "]";
  }
  os << ")";
  return os.str();
}

//===----------------------------------------------------------------------===//
// ShardingRewriter helpers
//===----------------------------------------------------------------------===//

static RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }
static int64_t rankOf(Value v) { return typeOf(v).getRank(); }

Layout ShardingRewriter::defaultLayout(Value original) const {
  if (sequenceParallel() && rankOf(original) == 3)
    return Layout::split(1);
  return Layout::replicated();
}

std::optional<Layout> ShardingRewriter::preferredByUser(Value original) const {
  if (!original.hasOneUse())
    return std::nullopt;
  OpOperand &use = *original.getUses().begin();
  if (auto user = dyn_cast<ShardingOpInterface>(use.getOwner()))
    return user.getPreferredOperandLayout(use.getOperandNumber(), ranks());
  return std::nullopt;
}

namespace {

/// Builds `op` again with local operands, its results typed by their layouts, and records them.
Operation *buildLocal(ShardingRewriter &rw, Operation *op, ValueRange operands, ArrayRef<Layout> layouts) {
  SmallVector<Type> types;
  for (auto [result, layout] : llvm::zip(op->getResults(), layouts))
    types.push_back(layout.localType(typeOf(result), rw.ranks()));
  OperationState state(op->getLoc(), op->getName(), operands, types, op->getAttrs());
  Operation *local = rw.builder().create(state);
  for (auto [result, localResult, layout] : llvm::zip(op->getResults(), local->getResults(), layouts))
    rw.set(result, localResult, layout);
  return local;
}

/// Gets every operand in `layouts` (one per operand) and builds the local op.
FailureOr<Operation *> buildWith(ShardingRewriter &rw, Operation *op, ArrayRef<Layout> operandLayouts,
                                 ArrayRef<bool> partialGrads, ArrayRef<Layout> resultLayouts) {
  SmallVector<Value> operands;
  for (auto [i, operand] : llvm::enumerate(op->getOperands())) {
    FailureOr<Value> local = rw.get(operand, operandLayouts[i], !partialGrads.empty() && partialGrads[i]);
    if (failed(local))
      return failure();
    operands.push_back(*local);
  }
  return buildLocal(rw, op, operands, resultLayouts);
}

/// Everything replicated: the op computes its whole result on every rank.
LogicalResult shardReplicated(ShardingRewriter &rw, Operation *op) {
  SmallVector<Layout> operands(op->getNumOperands(), Layout::replicated());
  SmallVector<Layout> results(op->getNumResults(), Layout::replicated());
  return buildWith(rw, op, operands, {}, results);
}

/// The layout an activation keeps through an op that works element by element (or row by row, when the rows'
/// dimension is not split): a partial sum is completed first, into where activations live by default.
Layout elementwiseLayout(ShardingRewriter &rw, Value x) {
  Layout layout = rw.layoutOf(x);
  return layout.isPartial() ? rw.defaultLayout(x) : layout;
}

LogicalResult shardUnary(ShardingRewriter &rw, Operation *op, const Layout &layout) {
  return buildWith(rw, op, {layout}, {}, {layout});
}

/// "linear 'decoder.layers.0.mlp.linear_fc1'" or "mt.linear": how messages name an op.
std::string describe(Operation *op) {
  std::string name;
  if (auto loc = dyn_cast<NameLoc>(op->getLoc()))
    name = loc.getName().str();
  std::string kind = op->getName().stripDialect().str();
  return name.empty() ? "mt." + kind : kind + " '" + name + "'";
}

} // namespace

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::shard(ShardingRewriter &rw) {
  int64_t vocab = typeOf(getTable()).getDimSize(0), t = rw.ranks();
  if (vocab < t) // a token-type table of 2 rows: too small to split, and cheap to replicate
    return shardReplicated(rw, *this);
  if (vocab % t != 0)
    return emitOpError() << "mt-shard: the vocabulary of " << describe(*this) << " has " << vocab
                         << " rows, not divisible by the tensor-parallel size " << t
                         << " (pad it: --make-vocab-size-divisible-by, --tensor-model-parallel-size)";
  // Vocab-parallel (Megatron's VocabParallelEmbedding): each rank looks up the ids in its rows, zeros elsewhere,
  // and the partial embeddings are summed (reduce-scattered along the sequence under sequence parallelism).
  FailureOr<Operation *> local =
      buildWith(rw, *this, {Layout::replicated(), Layout::split(0)}, {}, {Layout::partial()});
  if (failed(local))
    return failure();
  (*local)->setAttr(getVocabShardAttrName(), UnitAttr::get(getContext()));
  Layout target = rw.defaultLayout(getResult());
  FailureOr<Value> reduced = rw.convert((*local)->getResult(0), typeOf(getResult()), Layout::partial(), target, getLoc());
  if (failed(reduced))
    return failure();
  rw.set(getResult(), *reduced, target);
  return success();
}

LogicalResult AddPositionEmbeddingOp::shard(ShardingRewriter &rw) {
  Layout layout = elementwiseLayout(rw, getX());
  if (layout.isBlockSplit(1)) {
    // Each rank adds the positions of its block of the sequence: the table's gradient is a partial sum.
    FailureOr<Operation *> local = buildWith(rw, *this, {layout, Layout::replicated()}, {false, true}, {layout});
    if (failed(local))
      return failure();
    (*local)->setAttr(getSequenceShardAttrName(), UnitAttr::get(getContext()));
    return success();
  }
  return shardReplicated(rw, *this);
}

//===----------------------------------------------------------------------===//
// Norms
//===----------------------------------------------------------------------===//

/// A norm over the last dimension: any layout that keeps that dimension whole. Split rows (sequence parallelism)
/// make the weights' gradients partial sums.
static LogicalResult shardNorm(ShardingRewriter &rw, Operation *op, Value x) {
  Layout layout = elementwiseLayout(rw, x);
  if (layout.splitsLast(rankOf(x)) || (layout.isSplit() && !layout.isBlockSplit()))
    layout = Layout::replicated();
  SmallVector<Layout> operands(op->getNumOperands(), Layout::replicated());
  SmallVector<bool> partial(op->getNumOperands(), layout.isSplit());
  operands[0] = layout;
  partial[0] = false;
  return buildWith(rw, op, operands, partial, {layout});
}

LogicalResult LayerNormOp::shard(ShardingRewriter &rw) { return shardNorm(rw, *this, getX()); }
LogicalResult RmsNormOp::shard(ShardingRewriter &rw) { return shardNorm(rw, *this, getX()); }

//===----------------------------------------------------------------------===//
// Linear
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::shard(ShardingRewriter &rw) {
  int64_t t = rw.ranks(), rank = rankOf(getX());
  int64_t outFeatures = typeOf(getWeight()).getDimSize(0);
  Layout input = rw.layoutOf(getX());

  if (input.splitsLast(rank)) {
    // Row-parallel: each rank contracts over its input features; the partial products are summed (scattered
    // along the sequence under sequence parallelism) and the bias is added once, after the sum.
    Layout weight = Layout::split(1, input.spans);
    FailureOr<Value> x = rw.get(getX(), input);
    FailureOr<Value> w = rw.get(getWeight(), weight);
    if (failed(x) || failed(w))
      return failure();
    Value partial = rw.builder().create<LinearOp>(getLoc(), getType(), *x, *w, Value());
    Layout target = rw.defaultLayout(getResult());
    FailureOr<Value> y = rw.convert(partial, getType(), Layout::partial(), target, getLoc());
    if (failed(y))
      return failure();
    if (getBias()) {
      FailureOr<Value> bias = rw.get(getBias(), Layout::replicated(), /*partialGrad=*/target.isSplit());
      if (failed(bias))
        return failure();
      y = rw.builder().create<AddBiasOp>(getLoc(), y->getType(), *y, *bias).getResult();
    }
    rw.set(getResult(), *y, target);
    return success();
  }

  if (outFeatures < t) // a classifier head with fewer classes than ranks
    return shardReplicated(rw, *this);
  if (outFeatures % t != 0)
    return emitOpError() << "mt-shard: " << describe(*this) << " has " << outFeatures
                         << " output features, not divisible by the tensor-parallel size " << t
                         << " (it splits them: --ffn-hidden-size, --num-attention-heads, --kv-channels)";
  // Column-parallel: each rank computes its output features from the whole input, whose gradient is then a
  // partial sum. The consumer may ask for a particular assignment of features to ranks (SwiGLU's two halves,
  // the query groups of a fused QKV).
  Layout output = Layout::split(rank - 1);
  if (std::optional<Layout> preferred = rw.preferredByUser(getResult());
      preferred && preferred->isSplit() && preferred->dim == rank - 1)
    output = *preferred;
  Layout weight = Layout::split(0, output.spans);
  SmallVector<Layout> operands = {Layout::replicated(), weight};
  if (getBias())
    operands.push_back(weight);
  return buildWith(rw, *this, operands, {true, false, false}, {output});
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// The assignment of a fused projection's features to ranks that keeps each rank's query heads with their key and
/// value heads. Features come group by group, each group `queryHeadsPerGroup` query heads then `kvHeads` (1 key
/// and 1 value) heads of `headDim`. With at least as many groups as ranks, rank r takes a block of whole groups;
/// with fewer, the ranks sharing a group split its query heads and each holds the group's key and value heads.
static std::optional<Layout> groupedFeatures(int64_t rank, int64_t heads, int64_t groups, int64_t headDim,
                                             int64_t ranks) {
  if (groups % ranks == 0)
    return Layout::split(rank - 1);
  if (ranks % groups != 0 || heads % ranks != 0)
    return std::nullopt;
  int64_t sharing = ranks / groups, perGroup = heads / groups, mine = heads / ranks;
  int64_t groupWidth = (perGroup + 2) * headDim;
  SmallVector<SmallVector<Span, 2>> spans;
  for (int64_t r = 0; r < ranks; ++r) {
    int64_t g = r / sharing, j = r % sharing;
    SmallVector<Span, 2> rankSpans;
    if (mine > 0)
      rankSpans.push_back({g * groupWidth + j * mine * headDim, mine * headDim});
    rankSpans.push_back({g * groupWidth + perGroup * headDim, 2 * headDim});
    spans.push_back(rankSpans);
  }
  return Layout::split(rank - 1, std::move(spans));
}

/// The layout of key/value heads [batch, seq, groups, head_dim]: blocks of groups, or one shared group per rank.
static Layout kvHeadsLayout(int64_t groups, int64_t ranks) {
  if (groups % ranks == 0)
    return Layout::split(2);
  SmallVector<SmallVector<Span, 2>> spans;
  for (int64_t r = 0; r < ranks; ++r)
    spans.push_back({{r / (ranks / groups), 1}});
  return Layout::split(2, std::move(spans));
}

/// Local head counts of a rank: its share of the query heads, and one group when groups are fewer than ranks.
static void setLocalHeads(Operation *local, int64_t heads, int64_t groups, int64_t ranks) {
  Builder b(local->getContext());
  if (local->hasAttr("num_heads"))
    local->setAttr("num_heads", b.getI64IntegerAttr(heads / ranks));
  local->setAttr("num_query_groups", b.getI64IntegerAttr(std::max<int64_t>(groups / ranks, 1)));
}

std::optional<Layout> SplitQkvOp::getPreferredOperandLayout(unsigned, int64_t ranks) {
  int64_t heads = getNumHeads(), groups = getNumQueryGroups();
  return groupedFeatures(rankOf(getX()), heads, groups, typeOf(getQuery()).getShape().back(), ranks);
}

LogicalResult SplitQkvOp::shard(ShardingRewriter &rw) {
  std::optional<Layout> wanted = getPreferredOperandLayout(0, rw.ranks());
  if (!wanted || rw.layoutOf(getX()) != *wanted)
    return shardReplicated(rw, *this);
  int64_t groups = getNumQueryGroups();
  FailureOr<Operation *> local = buildWith(rw, *this, {*wanted}, {},
                                           {Layout::split(2), kvHeadsLayout(groups, rw.ranks()),
                                            kvHeadsLayout(groups, rw.ranks())});
  if (failed(local))
    return failure();
  setLocalHeads(*local, getNumHeads(), groups, rw.ranks());
  return success();
}

std::optional<Layout> SplitKvOp::getPreferredOperandLayout(unsigned, int64_t ranks) {
  return groupedFeatures(rankOf(getX()), /*heads=*/0, getNumQueryGroups(), typeOf(getKey()).getShape().back(), ranks);
}

LogicalResult SplitKvOp::shard(ShardingRewriter &rw) {
  std::optional<Layout> wanted = getPreferredOperandLayout(0, rw.ranks());
  if (!wanted || rw.layoutOf(getX()) != *wanted)
    return shardReplicated(rw, *this);
  int64_t groups = getNumQueryGroups();
  Layout kv = kvHeadsLayout(groups, rw.ranks());
  FailureOr<Operation *> local = buildWith(rw, *this, {*wanted}, {}, {kv, kv});
  if (failed(local))
    return failure();
  setLocalHeads(*local, /*heads=*/0, groups, rw.ranks());
  return success();
}

LogicalResult SplitHeadsOp::shard(ShardingRewriter &rw) {
  int64_t heads = typeOf(getResult()).getDimSize(2);
  if (!rw.layoutOf(getX()).isBlockSplit(rankOf(getX()) - 1) || heads % rw.ranks() != 0)
    return shardReplicated(rw, *this);
  return buildWith(rw, *this, {rw.layoutOf(getX())}, {}, {Layout::split(2)});
}

LogicalResult MergeHeadsOp::shard(ShardingRewriter &rw) {
  if (!rw.layoutOf(getX()).isBlockSplit(2))
    return shardReplicated(rw, *this);
  return buildWith(rw, *this, {Layout::split(2)}, {}, {Layout::split(rankOf(getX()) - 2)});
}

LogicalResult RopeOp::shard(ShardingRewriter &rw) {
  // Rotations are per head and per position: heads may be split, the sequence may not (its positions would
  // need an offset this op does not take).
  Layout layout = rw.layoutOf(getX());
  if (!(layout.isSplit() && layout.dim == 2))
    layout = Layout::replicated();
  return shardUnary(rw, *this, layout);
}

LogicalResult AttentionOp::shard(ShardingRewriter &rw) {
  int64_t heads = getNumHeads(), groups = getNumQueryGroups(), t = rw.ranks();
  if (!rw.layoutOf(getQuery()).isBlockSplit(2))
    return shardReplicated(rw, *this);
  // Each rank attends with its heads; the bias [heads, q, k] follows them.
  Layout kv = kvHeadsLayout(groups, t);
  SmallVector<Layout> operands = {Layout::split(2), kv, kv};
  if (getMask())
    operands.push_back(Layout::replicated());
  if (getBias())
    operands.push_back(Layout::split(0));
  FailureOr<Operation *> local = buildWith(rw, *this, operands, {}, {Layout::split(2)});
  if (failed(local))
    return failure();
  setLocalHeads(*local, heads, groups, t);
  (*local)->setAttr(getHeadShardAttrName(), UnitAttr::get(getContext()));
  return success();
}

//===----------------------------------------------------------------------===//
// Activations, residuals, dropout, casts, loss
//===----------------------------------------------------------------------===//

LogicalResult GeluOp::shard(ShardingRewriter &rw) { return shardUnary(rw, *this, elementwiseLayout(rw, getX())); }
LogicalResult CastOp::shard(ShardingRewriter &rw) { return shardUnary(rw, *this, elementwiseLayout(rw, getX())); }

LogicalResult DropoutOp::shard(ShardingRewriter &rw) {
  Layout layout = elementwiseLayout(rw, getX());
  if (layout.isSplit() && !layout.isBlockSplit())
    layout = Layout::replicated();
  FailureOr<Operation *> local = buildWith(rw, *this, {layout}, {}, {layout});
  if (failed(local))
    return failure();
  // A block of a split tensor draws the mask elements of its block of the whole tensor, as one rank would.
  if (layout.isSplit())
    (*local)->setAttr(getShardDimAttrName(), Builder(getContext()).getI64IntegerAttr(layout.dim));
  return success();
}

std::optional<Layout> SwigluOp::getPreferredOperandLayout(unsigned, int64_t ranks) {
  int64_t width = typeOf(getResult()).getShape().back(), rank = rankOf(getX());
  if (width % ranks != 0)
    return std::nullopt;
  int64_t mine = width / ranks;
  SmallVector<SmallVector<Span, 2>> spans;
  for (int64_t r = 0; r < ranks; ++r)
    spans.push_back({{r * mine, mine}, {width + r * mine, mine}});
  return Layout::split(rank - 1, std::move(spans));
}

LogicalResult SwigluOp::shard(ShardingRewriter &rw) {
  int64_t width = typeOf(getResult()).getShape().back();
  if (width % rw.ranks() != 0)
    return emitOpError() << "mt-shard: the SwiGLU width " << width
                         << " (--ffn-hidden-size) is not divisible by the tensor-parallel size " << rw.ranks();
  std::optional<Layout> wanted = getPreferredOperandLayout(0, rw.ranks());
  if (rw.layoutOf(getX()) != *wanted)
    return shardReplicated(rw, *this);
  return buildWith(rw, *this, {*wanted}, {}, {Layout::split(rankOf(getX()) - 1)});
}

LogicalResult AddOp::shard(ShardingRewriter &rw) {
  // Both operands in one layout: the split one if either is split (slicing a replicated operand is free),
  // a partial sum completed first.
  Layout lhs = elementwiseLayout(rw, getLhs()), rhs = elementwiseLayout(rw, getRhs());
  Layout layout = lhs;
  if (lhs != rhs) {
    if (lhs.isBlockSplit() && rhs.isReplicated())
      layout = lhs;
    else if (rhs.isBlockSplit() && lhs.isReplicated())
      layout = rhs;
    else
      layout = Layout::replicated();
  }
  return buildWith(rw, *this, {layout, layout}, {}, {layout});
}

LogicalResult CrossEntropyOp::shard(ShardingRewriter &rw) {
  Value logits = getLogits();
  if (!rw.layoutOf(logits).isBlockSplit(rankOf(logits) - 1))
    return shardReplicated(rw, *this);
  // Vocab-parallel cross-entropy: no rank holds whole logits; the kernel all-reduces each row's max and its sum
  // of exponentials and target logit (Megatron's vocab_parallel_cross_entropy).
  SmallVector<Layout> operands(getNumOperands(), Layout::replicated());
  operands[0] = rw.layoutOf(logits);
  FailureOr<Operation *> local = buildWith(rw, *this, operands, {}, {Layout::replicated()});
  if (failed(local))
    return failure();
  (*local)->setAttr(getVocabParallelAttrName(), UnitAttr::get(getContext()));
  return success();
}
