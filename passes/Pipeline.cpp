//===- Pipeline.cpp - Pipeline chunks of @forward --------------------------===//
//
// Which model chunk (pipeline stage, or virtual stage) each op of @forward runs on, and the chunks as functions
// that send and receive the values crossing their boundaries. A transformer layer is the unit: ops located in
// "<stack>.layers.<N>..." (the builder names every op after its Megatron-core module) belong to layer N; ops
// before the first layer (the embedding) go to the first stage, ops after the last (final norm, output layer,
// loss) to the last. Layers split evenly (Megatron's default), by the user's first/last-stage counts, or by cost:
// the partition whose most expensive stage, in forward FLOPs, is cheapest.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SetVector.h"

#include <limits>
#include <optional>

namespace mlir::mt {
#define GEN_PASS_DEF_MTPIPELINE
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using namespace mlir::mt;

namespace {

/// The stack and layer of an op located in "<stack>.layers.<N>...", e.g. ("decoder", 3).
std::optional<std::pair<std::string, int64_t>> layerOf(Location loc) {
  auto name = dyn_cast<NameLoc>(loc);
  if (!name)
    return std::nullopt;
  StringRef text = name.getName().getValue();
  size_t at = text.find(".layers.");
  if (at == StringRef::npos)
    return std::nullopt;
  StringRef digits = text.drop_front(at + 8).take_while([](char c) { return c >= '0' && c <= '9'; });
  int64_t layer = 0;
  if (digits.empty() || digits.getAsInteger(10, layer))
    return std::nullopt;
  return std::make_pair(text.take_front(at).str(), layer);
}

uint64_t flopsOf(Operation *op) {
  auto counted = dyn_cast<FlopCountOpInterface>(op);
  return counted ? counted.getForwardFlops() : 0;
}

struct MtPipelinePass : mt::impl::MtPipelineBase<MtPipelinePass> {
  using MtPipelineBase::MtPipelineBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    auto fail = [&](const Twine &message) {
      emitError(module.getLoc(), "mt-pipeline: ") << message;
      signalPassFailure();
    };
    if (!forward || !forward.getBody().hasOneBlock())
      return fail("the module has no one-block @forward function");
    if (module.lookupSymbol("train_step"))
      return fail("the module already has a @train_step; assign stages before --mt-autodiff");
    if (stages < 1 || virtualStages < 1)
      return fail("stages and virtual-stages must be at least 1, got " + Twine(static_cast<int64_t>(stages)) +
                  " and " + Twine(static_cast<int64_t>(virtualStages)));
    if (virtualStages > 1 && (firstStageLayers >= 0 || lastStageLayers >= 0))
      return fail("first-stage-layers and last-stage-layers do not combine with virtual-stages");
    if (virtualStages > 1 && stages < 2)
      return fail("virtual-stages needs at least 2 pipeline stages");
    const int64_t chunks = stages * virtualStages;
    if (balance != "uniform" && balance != "cost")
      return fail("unknown balance '" + balance + "'; expected uniform or cost");
    if (chunks == 1)
      return;

    // The layers, their forward FLOPs, and what comes before and after them.
    Block &body = forward.getBody().front();
    std::optional<std::string> stack;
    int64_t numLayers = 0;
    for (Operation &op : body)
      if (auto layer = layerOf(op.getLoc())) {
        if (stack && *stack != layer->first)
          return fail("pipeline stages of a model with two stacks ('" + *stack + "' and '" + layer->first +
                      "', an encoder-decoder) are not supported yet");
        stack = layer->first;
        numLayers = std::max(numLayers, layer->second + 1);
      }
    if (numLayers < chunks)
      return fail(Twine(numLayers) + " layers cannot fill " + Twine(chunks) +
                  (virtualStages > 1 ? " model chunks (stages x virtual-stages)" : " pipeline stages"));
    std::vector<double> layerCost(static_cast<size_t>(numLayers), 0.0);
    double before = 0.0, after = 0.0;
    bool seenLayer = false;
    for (Operation &op : body) {
      if (auto layer = layerOf(op.getLoc())) {
        layerCost[static_cast<size_t>(layer->second)] += static_cast<double>(flopsOf(&op));
        seenLayer = true;
      } else {
        (seenLayer ? after : before) += static_cast<double>(flopsOf(&op));
      }
    }

    FailureOr<std::vector<int64_t>> counts = layersPerStage(numLayers, layerCost, before, after);
    if (failed(counts))
      return signalPassFailure();
    std::vector<int64_t> stageOfLayer;
    for (auto [stage, count] : llvm::enumerate(*counts))
      stageOfLayer.insert(stageOfLayer.end(), static_cast<size_t>(count), static_cast<int64_t>(stage));

    // Every op gets its layer's stage; ops between layers the stage of the layer before; the head the last.
    Builder b(module.getContext());
    int64_t current = 0, lastLayerOp = -1, index = 0;
    for (Operation &op : body) {
      if (layerOf(op.getLoc()))
        lastLayerOp = index;
      ++index;
    }
    index = 0;
    for (Operation &op : body) {
      if (auto layer = layerOf(op.getLoc()))
        current = stageOfLayer[static_cast<size_t>(layer->second)];
      else if (index > lastLayerOp)
        current = chunks - 1;
      ++index;
      if (!isa<func::ReturnOp>(op))
        op.setAttr(kStageAttr, b.getI64IntegerAttr(current));
    }

    // A parameter used on several stages (a tied embedding): its stages, for the runtime to keep in sync.
    llvm::StringMap<llvm::SetVector<int64_t>> used;
    forward.walk([&](ParamRefOp ref) {
      for (Operation *user : ref->getUsers())
        if (auto stage = user->getAttrOfType<IntegerAttr>(kStageAttr))
          used[ref.getName()].insert(stage.getInt());
    });
    for (ParamOp param : module.getOps<ParamOp>())
      if (auto it = used.find(param.getSymName()); it != used.end() && it->second.size() > 1) {
        SmallVector<int64_t> list(it->second.begin(), it->second.end());
        llvm::sort(list);
        param->setAttr(kStagesAttr, b.getDenseI64ArrayAttr(list));
      }
    module->setAttr(kPipelineParallelAttr, b.getI64IntegerAttr(stages));
    if (virtualStages > 1)
      module->setAttr(kVirtualPipelineAttr, b.getI64IntegerAttr(virtualStages));

    assignRngStreams(body);
    // boundaries[c]: what chunk c receives (and chunk c - 1 sends); none into the first chunk or past the last.
    std::vector<SmallVector<Value>> boundaries(static_cast<size_t>(chunks) + 1);
    for (int64_t chunk = 1; chunk < chunks; ++chunk)
      boundaries[static_cast<size_t>(chunk)] = boundaryInto(body, chunk);
    for (int64_t chunk = 0; chunk < chunks; ++chunk)
      if (failed(buildChunk(forward, chunk, chunks, boundaries[static_cast<size_t>(chunk)],
                            boundaries[static_cast<size_t>(chunk) + 1])))
        return signalPassFailure();
    syncTiedParameters(module);
  }

  /// The values computed on chunks before `chunk` and used on it or later: what `chunk` receives, in the order
  /// they are defined. Parameters and inputs are not among them: every chunk reads its own.
  static SmallVector<Value> boundaryInto(Block &body, int64_t chunk) {
    SmallVector<Value> values;
    for (Operation &op : body) {
      auto stage = op.getAttrOfType<IntegerAttr>(kStageAttr);
      if (!stage || stage.getInt() >= chunk || isa<ParamRefOp>(op))
        continue;
      for (Value result : op.getResults())
        if (llvm::any_of(result.getUsers(), [&](Operation *user) {
              auto userStage = user->getAttrOfType<IntegerAttr>(kStageAttr);
              return !userStage || userStage.getInt() >= chunk; // the return belongs to the last chunk
            }))
          values.push_back(result);
    }
    return values;
  }

  /// @forward_chunk<chunk>: receives its boundary, runs its ops, sends the next chunk's boundary.
  LogicalResult buildChunk(func::FuncOp forward, int64_t chunk, int64_t chunks, ArrayRef<Value> incoming,
                           ArrayRef<Value> outgoing) {
    Block &body = forward.getBody().front();
    bool last = chunk == chunks - 1;
    FunctionType whole = forward.getFunctionType();
    OpBuilder b(forward->getContext());
    // After @forward, in chunk order.
    Operation *previous = chunk == 0 ? forward.getOperation()
                                     : forward->getParentOfType<ModuleOp>().lookupSymbol(
                                           "forward_chunk" + std::to_string(chunk - 1));
    b.setInsertionPointAfter(previous);
    auto func = b.create<func::FuncOp>(
        forward.getLoc(), "forward_chunk" + std::to_string(chunk),
        FunctionType::get(forward->getContext(), whole.getInputs(), last ? whole.getResults() : TypeRange{}));
    if (ArrayAttr args = forward.getAllArgAttrs())
      func.setAllArgAttrs(args);
    Block *entry = func.addEntryBlock();
    b.setInsertionPointToStart(entry);

    IRMapping mapping;
    for (auto [from, to] : llvm::zip(body.getArguments(), entry->getArguments()))
      mapping.map(from, to);
    for (auto [index, value] : llvm::enumerate(incoming)) {
      if (!isa<FloatType>(getElementTypeOrSelf(value.getType())))
        return value.getDefiningOp()->emitOpError("mt-pipeline: its result crosses from one pipeline chunk to a "
                                                  "later one, and only float tensors can be sent");
      auto recv = b.create<RecvOp>(value.getLoc(), value.getType(), b.getI64IntegerAttr(chunk - 1),
                                   b.getI64IntegerAttr(static_cast<int64_t>(index)), UnitAttr());
      recv->setAttr(kStageAttr, b.getI64IntegerAttr(chunk));
      mapping.map(value, recv.getResult());
    }
    // The chunk's ops; a parameter read on several chunks is read again on each.
    for (Operation &op : body.without_terminator()) {
      auto stage = op.getAttrOfType<IntegerAttr>(kStageAttr);
      if (!stage || stage.getInt() != chunk || isa<ParamRefOp>(op))
        continue;
      for (Value operand : op.getOperands())
        if (auto ref = operand.getDefiningOp<ParamRefOp>(); ref && !mapping.contains(operand)) {
          Operation *copy = b.clone(*ref);
          copy->setAttr(kStageAttr, b.getI64IntegerAttr(chunk));
          mapping.map(operand, copy->getResult(0));
        }
      b.clone(op, mapping);
    }
    if (!last) {
      for (auto [index, value] : llvm::enumerate(outgoing))
        b.create<SendOp>(value.getLoc(), mapping.lookup(value), b.getI64IntegerAttr(chunk + 1),
                         b.getI64IntegerAttr(static_cast<int64_t>(index)), UnitAttr())
            ->setAttr(kStageAttr, b.getI64IntegerAttr(chunk));
      b.create<func::ReturnOp>(forward.getLoc());
    } else {
      auto ret = cast<func::ReturnOp>(body.getTerminator());
      SmallVector<Value> results;
      for (Value v : ret.getOperands())
        results.push_back(mapping.lookup(v));
      b.create<func::ReturnOp>(ret.getLoc(), results);
    }
    return success();
  }

  /// A parameter used on several chunks (the tied embedding) has a copy on each; their gradients are summed over
  /// the "embedding" group once per iteration, so the copies stay equal (Megatron's embedding group).
  void syncTiedParameters(ModuleOp module) {
    SmallVector<Attribute> tied;
    for (ParamOp param : module.getOps<ParamOp>())
      if (param->hasAttr(kStagesAttr))
        tied.push_back(FlatSymbolRefAttr::get(param.getSymNameAttr()));
    if (tied.empty())
      return;
    OpBuilder b(module.getContext());
    auto finalize = module.lookupSymbol<func::FuncOp>("finalize_grads");
    Location loc = NameLoc::get(b.getStringAttr("finalize_grads"));
    if (!finalize) {
      b.setInsertionPointToEnd(module.getBody());
      finalize = b.create<func::FuncOp>(loc, "finalize_grads", FunctionType::get(module.getContext(), {}, {}));
      b.setInsertionPointToStart(finalize.addEntryBlock());
      b.create<func::ReturnOp>(loc);
    }
    b.setInsertionPointToStart(&finalize.getBody().front());
    b.create<AllReduceGradsOp>(loc, b.getArrayAttr(tied), b.getStringAttr("embedding"), IntegerAttr(),
                               DenseI64ArrayAttr());
  }

  /// How many layers each stage runs.
  FailureOr<std::vector<int64_t>> layersPerStage(int64_t layers, ArrayRef<double> cost, double embedding,
                                                 double head) {
    const int64_t p = stages * virtualStages;
    ModuleOp module = getOperation();
    if (firstStageLayers >= 0 || lastStageLayers >= 0) {
      // Megatron's uneven split: the given counts on the first and last stages, the rest evenly in between.
      int64_t first = firstStageLayers, last = lastStageLayers, fixed = 0, open = p;
      for (int64_t given : {first, last})
        if (given >= 0) {
          if (given < 1)
            return emitError(module.getLoc(), "mt-pipeline: a stage needs at least one layer, got ") << given;
          fixed += given;
          --open;
        }
      int64_t rest = layers - fixed;
      if (rest < open || (open > 0 && rest % open != 0) || (open == 0 && rest != 0))
        return emitError(module.getLoc(), "mt-pipeline: ")
               << layers << " layers minus " << fixed << " on the first/last stage leave " << rest
               << ", which do not split evenly over the other " << open << " stages";
      int64_t each = open > 0 ? rest / open : 0;
      std::vector<int64_t> counts(static_cast<size_t>(p), each);
      if (first >= 0)
        counts.front() = first;
      if (last >= 0)
        counts.back() = last;
      return counts;
    }
    if (balance == "uniform") {
      if (layers % p != 0)
        return emitError(module.getLoc(), "mt-pipeline: ")
               << layers << " layers are not divisible by " << p
               << (virtualStages > 1 ? " model chunks (stages x virtual-stages)" : " pipeline stages") << "; give first-stage-layers and last-stage-layers (Megatron's "
                  "--decoder-first-pipeline-num-layers, --decoder-last-pipeline-num-layers) or balance=cost";
      return std::vector<int64_t>(static_cast<size_t>(p), layers / p);
    }
    // balance=cost: contiguous groups minimising the largest stage cost, the first stage also paying for the
    // embedding and the last for the head. best[k][n]: the best largest cost of n layers on k stages.
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> prefix(static_cast<size_t>(layers) + 1, 0.0);
    for (int64_t i = 0; i < layers; ++i)
      prefix[static_cast<size_t>(i) + 1] = prefix[static_cast<size_t>(i)] + cost[static_cast<size_t>(i)];
    auto stageCost = [&](int64_t stage, int64_t from, int64_t to) {
      return prefix[static_cast<size_t>(to)] - prefix[static_cast<size_t>(from)] + (stage == 0 ? embedding : 0.0) +
             (stage == p - 1 ? head : 0.0);
    };
    std::vector<std::vector<double>> best(static_cast<size_t>(p) + 1,
                                          std::vector<double>(static_cast<size_t>(layers) + 1, inf));
    std::vector<std::vector<int64_t>> cut(best.size(), std::vector<int64_t>(best[0].size(), -1));
    best[0][0] = 0.0;
    for (int64_t k = 1; k <= p; ++k)
      for (int64_t n = k; n <= layers; ++n)
        for (int64_t m = k - 1; m < n; ++m) {
          double value = std::max(best[static_cast<size_t>(k) - 1][static_cast<size_t>(m)], stageCost(k - 1, m, n));
          if (value < best[static_cast<size_t>(k)][static_cast<size_t>(n)]) {
            best[static_cast<size_t>(k)][static_cast<size_t>(n)] = value;
            cut[static_cast<size_t>(k)][static_cast<size_t>(n)] = m;
          }
        }
    std::vector<int64_t> counts(static_cast<size_t>(p));
    for (int64_t k = p, n = layers; k >= 1; --k) {
      int64_t m = cut[static_cast<size_t>(k)][static_cast<size_t>(n)];
      counts[static_cast<size_t>(k) - 1] = n - m;
      n = m;
    }
    return counts;
  }
};

} // namespace
