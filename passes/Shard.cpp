//===- Shard.cpp - Tensor and sequence parallelism of @forward -------------===//
//
// Rewrites @forward into one rank's program. Ops are visited in order; each op's rule (ShardingOpInterface)
// asks for its operands in the layouts it can use, and this pass produces them from what it has, inserting the
// collective that each change of layout needs:
//
//   have \ want   replicated                  split(d)                 (a consumer with partial gradients)
//   replicated    -                           shard_slice              copy_to_group first
//   split(d)      all_gather                  all_gather + shard_slice all_gather whose backward reduce-scatters
//   partial       all_reduce                  reduce_scatter
//
// Parameters take the layout of their first use; a parameter whose gradient is a partial sum is summed by
// @finalize_grads after the last micro-batch, in one coalesced collective. This file knows no op.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

#include <map>
#include <tuple>

namespace mlir::mt {
#define GEN_PASS_DEF_MTSHARD
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using namespace mlir::mt;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

struct ParamState {
  ParamOp decl;
  std::optional<Layout> layout; // set by the first use
  Value local;                  // its param_ref in the local program
  bool partialGrad = false;     // replicated, with a gradient that each rank computes in part
};

class ShardingState : public ShardingRewriter {
public:
  ShardingState(ModuleOp module, OpBuilder &b, int64_t ranks, bool sequence)
      : b(b), t(ranks), sequence(sequence), group(b.getStringAttr("tp")) {
    for (ParamOp param : module.getOps<ParamOp>())
      params[param.getSymName()].decl = param;
  }

  OpBuilder &builder() override { return b; }
  int64_t ranks() const override { return t; }
  bool sequenceParallel() const override { return sequence; }

  Layout layoutOf(Value original) override {
    if (auto ref = original.getDefiningOp<ParamRefOp>()) {
      const ParamState &param = params[ref.getName()];
      return param.layout ? *param.layout : Layout::replicated();
    }
    auto it = values.find(original);
    return it == values.end() ? Layout::replicated() : it->second.second;
  }

  FailureOr<Value> get(Value original, const Layout &layout, bool partialGrad) override {
    if (auto ref = original.getDefiningOp<ParamRefOp>())
      return getParam(ref, layout, partialGrad);
    auto it = values.find(original);
    if (it == values.end())
      return current->emitOpError("mt-shard: an operand was not sharded before its use");
    auto &[local, have] = it->second;
    if (have == layout && !partialGrad)
      return local;
    auto key = std::make_tuple(original.getAsOpaquePointer(), layout.str(), partialGrad);
    if (auto cached = conversions.find(key); cached != conversions.end())
      return cached->second;
    FailureOr<Value> converted = convertImpl(local, typeOf(original), have, layout, partialGrad, current->getLoc());
    if (succeeded(converted))
      conversions[key] = *converted;
    return converted;
  }

  FailureOr<Value> convert(Value local, RankedTensorType global, const Layout &from, const Layout &to,
                           Location loc) override {
    return convertImpl(local, global, from, to, /*partialGrad=*/false, loc);
  }

  void set(Value original, Value local, const Layout &layout) override { values[original] = {local, layout}; }

  /// The op whose rule runs; errors are reported on it.
  Operation *current = nullptr;

  /// Gives every used parameter its local type and shard; returns the parameters that @finalize_grads sums.
  LogicalResult finishParams(ModuleOp module, SmallVectorImpl<ParamOp> &partialParams,
                             llvm::MapVector<std::tuple<int64_t, int64_t, int64_t>, SmallVector<ParamOp>> &shared);

private:
  FailureOr<Value> getParam(ParamRefOp ref, const Layout &layout, bool partialGrad);
  FailureOr<Value> convertImpl(Value v, RankedTensorType global, const Layout &from, const Layout &to,
                               bool partialGrad, Location loc);
  LogicalResult checkDivisible(RankedTensorType global, int64_t dim, StringRef what);

  OpBuilder &b;
  int64_t t;
  bool sequence;
  StringAttr group;
  llvm::StringMap<ParamState> params;
  DenseMap<Value, std::pair<Value, Layout>> values; // original -> (local, layout)
  std::map<std::tuple<const void *, std::string, bool>, Value> conversions;
};

LogicalResult ShardingState::checkDivisible(RankedTensorType global, int64_t dim, StringRef what) {
  int64_t size = global.getDimSize(dim);
  if (size % t == 0)
    return success();
  return current->emitOpError() << "mt-shard: dimension " << dim << " of " << what << " " << global << " has size "
                                << size << ", not divisible by the tensor-parallel size " << t;
}

FailureOr<Value> ShardingState::getParam(ParamRefOp ref, const Layout &layout, bool partialGrad) {
  ParamState &param = params[ref.getName()];
  RankedTensorType global = ref.getType();
  if (!param.layout) {
    if (layout.isPartial())
      return current->emitOpError("mt-shard: a parameter cannot be a partial sum");
    if (layout.isBlockSplit() && failed(checkDivisible(global, layout.dim, "parameter '" + ref.getName().str() + "'")))
      return failure();
    param.layout = layout;
    param.local = b.create<ParamRefOp>(ref.getLoc(), layout.localType(global, t), ref.getNameAttr());
  } else if (*param.layout != layout) {
    return current->emitOpError() << "mt-shard: parameter '" << ref.getName() << "' is used as "
                                  << param.layout->str() << " and as " << layout.str()
                                  << "; a parameter has one layout";
  }
  if (partialGrad) {
    if (!layout.isReplicated())
      return current->emitOpError("mt-shard: partial gradients of a split parameter are not supported");
    param.partialGrad = true;
  }
  return param.local;
}

FailureOr<Value> ShardingState::convertImpl(Value v, RankedTensorType global, const Layout &from, const Layout &to,
                                            bool partialGrad, Location loc) {
  auto unsupported = [&]() -> FailureOr<Value> {
    return current->emitOpError() << "mt-shard: cannot convert a value from " << from.str() << " to " << to.str()
                                  << (partialGrad ? " for a consumer with partial gradients" : "");
  };
  auto copyToGroup = [&](Value x) -> Value { return b.create<CopyToGroupOp>(loc, x.getType(), x, group); };
  auto localType = [&](const Layout &l) { return l.localType(global, t); };
  auto dimAttr = [&](int64_t d) { return b.getI64IntegerAttr(d); };

  if (from == to) {
    if (!partialGrad)
      return v;
    return to.isReplicated() ? FailureOr<Value>(copyToGroup(v)) : unsupported();
  }
  if (to.isPartial() || (from.isSplit() && !from.isBlockSplit()) || (to.isSplit() && !to.isBlockSplit()))
    return unsupported();
  if (to.isSplit() && failed(checkDivisible(global, to.dim, "a value of type")))
    return failure();

  if (from.isReplicated()) { // to a split: each rank keeps its block
    Value x = partialGrad ? copyToGroup(v) : v;
    return b.create<ShardSliceOp>(loc, localType(to), x, dimAttr(to.dim), group).getResult();
  }
  if (from.isSplit()) {
    if (to.isReplicated()) {
      UnitAttr replicatedGrad = partialGrad ? UnitAttr() : b.getUnitAttr();
      return b.create<AllGatherOp>(loc, global, v, dimAttr(from.dim), group, replicatedGrad).getResult();
    }
    if (partialGrad)
      return unsupported();
    Value whole = b.create<AllGatherOp>(loc, global, v, dimAttr(from.dim), group, b.getUnitAttr());
    return b.create<ShardSliceOp>(loc, localType(to), whole, dimAttr(to.dim), group).getResult();
  }
  // A partial sum.
  if (to.isReplicated()) {
    Value sum = b.create<AllReduceOp>(loc, global, v, group);
    return partialGrad ? copyToGroup(sum) : sum;
  }
  if (partialGrad)
    return unsupported();
  return b.create<ReduceScatterOp>(loc, localType(to), v, dimAttr(to.dim), group).getResult();
}

/// For a parameter whose shard holds spans that several ranks share: (ranks per block, first row, rows) of the
/// shared rows in the local tensor. Fails for sharing that is not blocks of consecutive ranks.
FailureOr<std::optional<std::tuple<int64_t, int64_t, int64_t>>> sharedRows(ParamOp param, const Layout &layout,
                                                                         int64_t t) {
  std::optional<std::tuple<int64_t, int64_t, int64_t>> shared;
  size_t count = layout.spans.front().size();
  int64_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    int64_t length = layout.spans[0][i].second;
    int64_t block = 1;
    while (block < t && layout.spans[block][i] == layout.spans[0][i])
      ++block;
    if (block > 1) {
      // Every block of `block` consecutive ranks holds one span, and the next block another.
      bool blocks = t % block == 0;
      for (int64_t r = 0; blocks && r < t; ++r)
        blocks = layout.spans[r][i] == layout.spans[r - r % block][i] &&
                 (r % block != 0 || r == 0 || layout.spans[r][i] != layout.spans[r - 1][i]);
      if (!blocks || layout.dim != 0 || shared)
        return param.emitOpError("mt-shard: its ranks share rows in a pattern @finalize_grads cannot sum (")
               << layout.str() << ")";
      shared = std::make_tuple(block, offset, length);
    }
    offset += length;
  }
  return shared;
}

LogicalResult ShardingState::finishParams(
    ModuleOp module, SmallVectorImpl<ParamOp> &partialParams,
    llvm::MapVector<std::tuple<int64_t, int64_t, int64_t>, SmallVector<ParamOp>> &shared) {
  // Declaration order, so @finalize_grads and the plan list parameters as the model does.
  for (ParamOp decl : module.getOps<ParamOp>()) {
    ParamState &param = params[decl.getSymName()];
    if (!param.layout)
      continue;
    if (param.partialGrad)
      partialParams.push_back(decl);
    if (!param.layout->isSplit())
      continue;
    const Layout &layout = *param.layout;
    RankedTensorType global = decl.getTensorType();
    int64_t size = global.getDimSize(layout.dim);
    SmallVector<int64_t> spans;
    for (int64_t r = 0; r < t; ++r)
      for (const Span &span : layout.spansOf(r, size, t))
        spans.append({span.first, span.second});
    int64_t perRank = static_cast<int64_t>(layout.spansOf(0, size, t).size());
    decl.setType(layout.localType(global, t));
    decl.setShardAttr(ShardAttr::get(decl.getContext(), layout.dim, size, perRank, spans));
    if (layout.hasReplicatedSpans()) {
      auto rows = sharedRows(decl, layout, t);
      if (failed(rows))
        return failure();
      if (*rows)
        shared[**rows].push_back(decl);
    }
  }
  return success();
}

/// Parameters whose shards share rows, by (ranks per block, first row, rows).
using SharedRows = llvm::MapVector<std::tuple<int64_t, int64_t, int64_t>, SmallVector<ParamOp>>;

struct MtShardPass : mt::impl::MtShardBase<MtShardPass> {
  using MtShardBase::MtShardBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward || !forward.getBody().hasOneBlock()) {
      emitError(module.getLoc(), "mt-shard: the module has no one-block @forward function to shard");
      return signalPassFailure();
    }
    if (module.lookupSymbol("train_step")) {
      emitError(module.getLoc(), "mt-shard: the module already has a @train_step; shard before --mt-autodiff, which then "
                       "differentiates the collectives");
      return signalPassFailure();
    }
    if (module->hasAttr(kTensorParallelAttr)) {
      emitError(module.getLoc(), "mt-shard: the module is already sharded (it has '") << kTensorParallelAttr << "')";
      return signalPassFailure();
    }
    if (failed(checkConfiguration(module, forward)))
      return signalPassFailure();
    // One tensor-parallel rank: the whole model is its own shard.
    SmallVector<ParamOp> partialParams;
    SharedRows shared;
    if (tensorParallel > 1 && failed(shardForward(module, forward, partialParams, shared)))
      return signalPassFailure();
    OpBuilder b(module.getContext());
    if (dataParallel > 1)
      module->setAttr(kDataParallelAttr, b.getI64IntegerAttr(dataParallel));
    if (distributedOptimizer)
      module->setAttr(kDistributedOptimizerAttr, b.getUnitAttr());
    SmallVector<SmallVector<ParamOp>> buckets;
    if (dataParallel > 1 && !distributedOptimizer)
      buckets = dataParallelBuckets(module);
    buildFinalizeGrads(module, forward, partialParams, shared, buckets);
  }

  /// The parameters whose gradients the data-parallel replicas sum, in buckets of at most `bucketSize` elements
  /// (a larger parameter gets a bucket of its own), in the order the backward finishes them: the last layers
  /// first, so that on GPUs a bucket's all-reduce can start while the backward goes on (Megatron's DDP buckets).
  SmallVector<SmallVector<ParamOp>> dataParallelBuckets(ModuleOp module) {
    SmallVector<SmallVector<ParamOp>> buckets;
    int64_t filled = 0;
    SmallVector<ParamOp> params = llvm::to_vector(module.getOps<ParamOp>());
    for (ParamOp param : llvm::reverse(params)) {
      int64_t elements = param.getTensorType().getNumElements();
      if (buckets.empty() || filled + elements > bucketSize) {
        buckets.emplace_back();
        filled = 0;
      }
      buckets.back().push_back(param);
      filled += elements;
    }
    return buckets;
  }

  /// The constraints Megatron's layout puts on the model, checked before anything is rewritten.
  LogicalResult checkConfiguration(ModuleOp module, func::FuncOp forward) {
    int64_t t = tensorParallel;
    if (t < 1)
      return emitError(module.getLoc(), "mt-shard: tensor-parallel size must be at least 1, got ") << t;
    if (dataParallel < 1)
      return emitError(module.getLoc(), "mt-shard: data-parallel size must be at least 1, got ")
             << static_cast<int64_t>(dataParallel);
    if (bucketSize < 1)
      return emitError(module.getLoc(), "mt-shard: dp-bucket-size must be at least 1, got ")
             << static_cast<int64_t>(bucketSize);
    if (auto count = module->getAttrOfType<IntegerAttr>("mt.num_micro_batches");
        count && count.getInt() % dataParallel != 0)
      return emitError(module.getLoc(), "mt-shard: the global batch of ")
             << count.getInt() << " micro-batches (--global-batch-size / --micro-batch-size) is not divisible by "
             << "the data-parallel size " << static_cast<int64_t>(dataParallel)
             << "; each replica must run the same number of micro-batches";
    if (sequenceParallel && t == 1)
      return emitError(module.getLoc(), "mt-shard: sequence parallelism needs a tensor-parallel size above 1 (Megatron: "
                              "--sequence-parallel with --tensor-model-parallel-size 1)");
    if (sequenceParallel)
      for (BlockArgument arg : forward.getArguments()) {
        auto type = dyn_cast<RankedTensorType>(arg.getType());
        if (type && type.getRank() == 2 && type.getElementType().isInteger(32) && type.getDimSize(1) % t != 0)
          return forward.emitError("mt-shard: sequence parallelism splits the sequence, but its length ")
                 << type.getDimSize(1) << " (argument #" << arg.getArgNumber()
                 << ") is not divisible by the tensor-parallel size " << t;
      }
    WalkResult result = forward.walk([&](AttentionOp attention) {
      int64_t heads = attention.getNumHeads(), groups = attention.getNumQueryGroups();
      if (heads % t != 0) {
        attention.emitOpError("mt-shard: ") << heads << " attention heads are not divisible by the tensor-parallel "
                                            << "size " << t << " (--num-attention-heads)";
        return WalkResult::interrupt();
      }
      if (groups % t != 0 && t % groups != 0) {
        attention.emitOpError("mt-shard: ")
            << groups << " query groups neither divide nor are divisible by the tensor-parallel size " << t
            << " (--num-query-groups: with fewer groups than ranks, each group's key/value heads are replicated on "
               "the ranks that share it)";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    return failure(result.wasInterrupted());
  }

  LogicalResult shardForward(ModuleOp module, func::FuncOp forward, SmallVectorImpl<ParamOp> &partialParams,
                             SharedRows &shared) {
    MLIRContext *context = module.getContext();
    Block &old = forward.getBody().front();
    auto *body = new Block();
    for (BlockArgument arg : old.getArguments())
      body->addArgument(arg.getType(), arg.getLoc());
    forward.getBody().push_back(body);

    OpBuilder b(context);
    b.setInsertionPointToEnd(body);
    ShardingState state(module, b, tensorParallel, sequenceParallel);
    for (auto [original, local] : llvm::zip(old.getArguments(), body->getArguments()))
      state.set(original, local, Layout::replicated());

    for (Operation &op : old.without_terminator()) {
      if (isa<ParamRefOp>(op))
        continue; // a parameter gets its local reference, in its layout, at its first use
      state.current = &op;
      LogicalResult sharded = success();
      if (auto rule = dyn_cast<ShardingOpInterface>(op)) {
        sharded = rule.shard(state);
      } else if (op.getNumRegions() == 0 && op.getDialect() == module->getContext()->getLoadedDialect<MtDialect>()) {
        sharded = shardReplicated(state, op);
      } else {
        sharded = op.emitOpError("mt-shard: cannot shard an op outside the mt dialect");
      }
      if (failed(sharded))
        return failure();
    }
    Operation *ret = old.getTerminator();
    state.current = ret;
    SmallVector<Value> results;
    for (Value value : ret->getOperands()) {
      FailureOr<Value> local = state.get(value, Layout::replicated(), false);
      if (failed(local))
        return failure();
      results.push_back(*local);
    }
    b.create<func::ReturnOp>(ret->getLoc(), results);
    old.dropAllDefinedValueUses();
    old.dropAllReferences();
    old.erase();

    if (failed(state.finishParams(module, partialParams, shared)))
      return failure();
    module->setAttr(kTensorParallelAttr, b.getI64IntegerAttr(tensorParallel));
    if (sequenceParallel)
      module->setAttr(kSequenceParallelAttr, b.getUnitAttr());
    return success();
  }

  /// An op without a rule: whole operands in, whole results out, on every rank.
  static LogicalResult shardReplicated(ShardingState &state, Operation &op) {
    SmallVector<Value> operands;
    for (Value operand : op.getOperands()) {
      FailureOr<Value> local = state.get(operand, Layout::replicated(), false);
      if (failed(local))
        return failure();
      operands.push_back(*local);
    }
    OperationState copy(op.getLoc(), op.getName(), operands, op.getResultTypes(), op.getAttrs());
    Operation *local = state.builder().create(copy);
    for (auto [result, localResult] : llvm::zip(op.getResults(), local->getResults()))
      state.set(result, localResult, Layout::replicated());
    return success();
  }

  /// @finalize_grads: the gradient sums that wait for the last micro-batch, one collective per kind: over the
  /// tensor-parallel group first (partial sums of replicated parameters, shared key/value rows), then over the
  /// data-parallel replicas, bucket by bucket.
  static void buildFinalizeGrads(ModuleOp module, func::FuncOp forward, ArrayRef<ParamOp> partialParams,
                                 const SharedRows &shared, ArrayRef<SmallVector<ParamOp>> buckets) {
    if (partialParams.empty() && shared.empty() && buckets.empty())
      return;
    MLIRContext *context = module.getContext();
    OpBuilder b(context);
    b.setInsertionPointAfter(forward);
    Location loc = NameLoc::get(b.getStringAttr("finalize_grads"));
    auto func = b.create<func::FuncOp>(loc, "finalize_grads", FunctionType::get(context, {}, {}));
    b.setInsertionPointToStart(func.addEntryBlock());
    auto names = [&](ArrayRef<ParamOp> list) {
      SmallVector<Attribute> refs;
      for (ParamOp param : list)
        refs.push_back(FlatSymbolRefAttr::get(param.getSymNameAttr()));
      return b.getArrayAttr(refs);
    };
    StringAttr group = b.getStringAttr("tp");
    if (!partialParams.empty())
      b.create<AllReduceGradsOp>(loc, names(partialParams), group, IntegerAttr(), DenseI64ArrayAttr());
    for (const auto &[key, list] : shared) {
      auto [block, offset, rows] = key;
      b.create<AllReduceGradsOp>(loc, names(list), group, b.getI64IntegerAttr(block),
                                 b.getDenseI64ArrayAttr({offset, rows}));
    }
    for (ArrayRef<ParamOp> bucket : buckets)
      b.create<AllReduceGradsOp>(loc, names(bucket), b.getStringAttr("dp"), IntegerAttr(), DenseI64ArrayAttr());
    b.create<func::ReturnOp>(loc);
  }
};

} // namespace
