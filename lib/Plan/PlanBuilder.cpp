//===- PlanBuilder.cpp - Lowering mt IR to a plan --------------------------===//
//
// Each mt op becomes one step named after it ("linear", "attention_grad", ...) with its attributes; views
// (split_heads, merge_heads) alias their operand's buffer; parameter gradients are written by the kernels that
// produce them straight into the gradient buffers, accumulating, so that neither a temporary nor an extra pass
// over memory is needed. See docs/plan.md.
//
//===----------------------------------------------------------------------===//

#include "megatron/Plan/PlanBuilder.h"

#include "dialects/mt/MtOps.h"
#include "megatron/Analysis/ModelFiguresAnalysis.h"
#include "megatron/Plan/MemoryPlanner.h"
#include "megatron/Plan/PipelineMessages.h"
#include "megatron/Schedule/PipelineSchedule.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::mt;
namespace plan = megatron::plan;

namespace {

FailureOr<plan::DType> dtypeOf(Operation *where, Type element) {
  if (element.isF32())
    return plan::DType::F32;
  if (element.isF64())
    return plan::DType::F64;
  if (element.isBF16())
    return plan::DType::BF16;
  if (element.isF16())
    return plan::DType::F16;
  if (element.isSignlessInteger(32))
    return plan::DType::I32;
  if (element.isSignlessInteger(64))
    return plan::DType::I64;
  return where->emitError("mt-plan: unsupported element type ") << element;
}

/// Outputs that a kernel adds into instead of overwriting: the ones that are parameter gradients. The runtime
/// kernels share this contract (docs/cpu-kernels.md).
SmallVector<unsigned> accumulatingOutputs(Operation *op) {
  return TypeSwitch<Operation *, SmallVector<unsigned>>(op)
      .Case<LinearGradWeightOp, SumRowsOp, EmbeddingGradOp, PositionEmbeddingGradOp, RelativePositionBiasGradOp>(
          [](auto) { return SmallVector<unsigned>{0}; })
      .Case<LayerNormGradOp, PoolerGradOp>([](auto) { return SmallVector<unsigned>{1, 2}; })
      .Case<RmsNormGradOp>([](auto) { return SmallVector<unsigned>{1}; })
      .Default([](Operation *) { return SmallVector<unsigned>{}; });
}

/// Statistics a forward kernel saves for its backward (docs/cpu-kernels.md): the norms' mean and reciprocal
/// standard deviation per row, the log-sum-exp of attention's and the loss's softmax rows. They become extra
/// outputs of the forward step and extra inputs of the backward step, so the memory planner sees them.
SmallVector<SmallVector<int64_t>> savedShapes(Operation *op) {
  auto rowsOf = [](Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    return type.getNumElements() / type.getShape().back();
  };
  return TypeSwitch<Operation *, SmallVector<SmallVector<int64_t>>>(op)
      .Case<LayerNormOp>([&](LayerNormOp o) {
        return SmallVector<SmallVector<int64_t>>{{rowsOf(o.getX())}, {rowsOf(o.getX())}};
      })
      .Case<RmsNormOp>([&](RmsNormOp o) { return SmallVector<SmallVector<int64_t>>{{rowsOf(o.getX())}}; })
      .Case<CrossEntropyOp>([&](CrossEntropyOp o) { return SmallVector<SmallVector<int64_t>>{{rowsOf(o.getLogits())}}; })
      .Case<AttentionOp>([&](AttentionOp o) {
        ArrayRef<int64_t> q = cast<RankedTensorType>(o.getQuery().getType()).getShape();
        return SmallVector<SmallVector<int64_t>>{{q[0], q[2], q[1]}};
      })
      .Default([](Operation *) { return SmallVector<SmallVector<int64_t>>{}; });
}

/// The operand whose buffer a kernel may overwrite with its (only) result, element by element, reading each element
/// before writing it: the cross-entropy backward turns the logits into their gradient in place, as Megatron's
/// does. At GPT sizes the logits are the largest activation (a micro-batch of 8 × 1024 tokens over GPT-2's vocabulary
/// is 824 MB in bf16), and a second buffer of that size would be live beside them.
std::optional<unsigned> overwritableOperand(Operation *op) {
  if (isa<CrossEntropyGradOp>(op))
    return 1; // (dloss, logits, labels, [mask])
  return std::nullopt;
}

/// Whether `op` is the last reader of `value` in its block (nothing after it reads it, the return included).
bool isLastUse(Value value, Operation *op) {
  return llvm::all_of(value.getUsers(), [&](Operation *user) {
    return user == op || (user->getBlock() == op->getBlock() && user->isBeforeInBlock(op));
  });
}

/// The forward op whose saved statistics a backward op reads, or null for a backward op that reads none.
Operation *forwardOf(Operation *op) {
  auto userOf = [](Value operand, auto matches) -> Operation * {
    for (Operation *user : operand.getUsers())
      if (matches(user))
        return user;
    return nullptr;
  };
  return TypeSwitch<Operation *, Operation *>(op)
      .Case<LayerNormGradOp>([&](LayerNormGradOp g) {
        return userOf(g.getX(), [&](Operation *u) {
          auto f = dyn_cast<LayerNormOp>(u);
          return f && f.getWeight() == g.getWeight() && f.getEpsilon() == g.getEpsilon();
        });
      })
      .Case<RmsNormGradOp>([&](RmsNormGradOp g) {
        return userOf(g.getX(), [&](Operation *u) {
          auto f = dyn_cast<RmsNormOp>(u);
          return f && f.getWeight() == g.getWeight() && f.getEpsilon() == g.getEpsilon();
        });
      })
      .Case<CrossEntropyGradOp>([&](CrossEntropyGradOp g) {
        return userOf(g.getLogits(), [&](Operation *u) {
          auto f = dyn_cast<CrossEntropyOp>(u);
          return f && f.getLabels() == g.getLabels() && f.getLossMask() == g.getLossMask();
        });
      })
      .Case<AttentionGradOp>([](AttentionGradOp g) { return g.getOut().getDefiningOp<AttentionOp>().getOperation(); })
      .Default([](Operation *) -> Operation * { return nullptr; });
}

bool isAccumulating(OpResult result) {
  return llvm::is_contained(accumulatingOutputs(result.getOwner()), result.getResultNumber());
}

/// Step attributes: integers, floats, booleans and the mt enums as their keywords.
std::map<std::string, plan::AttrValue> stepAttrs(Operation *op) {
  std::map<std::string, plan::AttrValue> attrs;
  for (NamedAttribute named : op->getAttrDictionary()) {
    std::string key = named.getName().str();
    Attribute value = named.getValue();
    if (key == "operandSegmentSizes")
      continue;
    if (auto b = dyn_cast<BoolAttr>(value))
      attrs[key] = b.getValue();
    else if (auto i = dyn_cast<IntegerAttr>(value))
      attrs[key] = i.getInt();
    else if (auto f = dyn_cast<FloatAttr>(value))
      attrs[key] = f.getValueAsDouble();
    else if (auto mask = dyn_cast<AttnMaskTypeAttr>(value))
      attrs[key] = stringifyAttnMaskType(mask.getValue()).str();
    else if (auto gelu = dyn_cast<GeluApproximationAttr>(value))
      attrs[key] = stringifyGeluApproximation(gelu.getValue()).str();
    else if (auto text = dyn_cast<StringAttr>(value))
      attrs[key] = text.str();
    else if (isa<UnitAttr>(value))
      attrs[key] = true;
    else if (auto rows = dyn_cast<DenseI64ArrayAttr>(value); rows && key == "rows" && rows.size() == 2) {
      attrs["row_offset"] = rows[0];
      attrs["row_count"] = rows[1];
    }
  }
  return attrs;
}

std::string locationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (std::string name = locationName(inner); !name.empty())
        return name;
  return "";
}

/// A fingerprint of the parameters' names, whole shapes, dtypes and inits: a checkpoint loads only into the same
/// model, whatever tensor-parallel layout wrote it or reads it.
std::string modelFingerprint(ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  for (ParamOp param : module.getOps<ParamOp>())
    os << param.getSymName() << ":" << param.getGlobalType() << ":" << param.getInit() << ";";
  return plan::fingerprintText(os.str());
}

class PlanLowering {
public:
  /// `stage`: the pipeline stage to lower, of a module split into stages; 0 for one that is not.
  PlanLowering(ModuleOp module, int64_t stage) : module(module), stage(stage) {}

  FailureOr<plan::Plan> run();

private:
  /// The pipeline schedule of this stage and its stash slots per chunk.
  LogicalResult schedulePipeline();
  /// Lowers @train_step_chunk<c> into its forward and backward halves, for local chunk `local`.
  LogicalResult lowerTrainingChunk(int64_t local);
  FailureOr<int> newBuffer(Operation *where, RankedTensorType type, plan::Arena arena);
  LogicalResult declareParams();
  LogicalResult declareInputs(func::FuncOp forward);
  /// Lowers `func` as program `name`. With `stopAtLogits`, the final cross-entropy is left out and the program's
  /// output is its logits (for generation).
  FailureOr<plan::Program> lowerProgram(func::FuncOp func, StringRef name, bool stopAtLogits);
  /// Where lowerProgram found mt.backward_start: the index of the backward's first step, or -1.
  int backwardStart = -1;
  /// Lowers @finalize_grads: collectives over gradient buffers, in place, once per iteration.
  FailureOr<plan::Program> lowerFinalizeGrads(func::FuncOp func);
  void bindGradients(func::FuncOp func);
  void bind(Value value, StringRef param, GradAccumulateOp sink);
  /// Mixed precision: the buffer of the 16-bit copy of a parameter that `narrow` (a cast of `ref`) makes, in the
  /// weights arena. Every program's casts of one parameter to one type share it; the first one adds its step to
  /// the cast_weights program.
  FailureOr<int> weightCopy(CastOp narrow, ParamRefOp ref);

  ModuleOp module;
  int64_t stage;
  llvm::StringSet<> stageParams; // the parameters this pipeline stage reads (all of them without a pipeline)
  plan::Plan result;
  int64_t persistentBytes[plan::kNumArenas] = {};
  llvm::StringMap<int> paramBuffers, gradBuffers;
  SmallVector<int> inputBuffers;
  llvm::StringMap<int> weightCopies; // "<parameter>:<type>" -> its 16-bit copy
  plan::Program castWeights;         // the steps that write the copies from the parameters

  // Per program:
  DenseMap<Value, int> buffers;
  DenseMap<Value, StringRef> boundToGradient;              // results a kernel accumulates into a gradient
  llvm::DenseSet<Operation *> elidedGradientOps;           // sums of gradients that accumulation replaces, and
                                                          // the casts to f32 of 16-bit parameter gradients
  DenseMap<Operation *, SmallVector<Value>> explicitSinks; // grad_accumulate -> values to add in a step
  DenseMap<Operation *, SmallVector<int>> savedBuffers;    // forward op -> the statistics it saves
  DenseMap<int, int> viewBase;                             // view buffer -> the buffer whose bytes it shares
};

FailureOr<int> PlanLowering::newBuffer(Operation *where, RankedTensorType type, plan::Arena arena) {
  FailureOr<plan::DType> dtype = dtypeOf(where, type.getElementType());
  if (failed(dtype))
    return failure();
  plan::Buffer buffer;
  buffer.arena = arena;
  buffer.dtype = *dtype;
  buffer.shape.assign(type.getShape().begin(), type.getShape().end());
  buffer.bytes = buffer.numElements() * plan::bytesOf(*dtype);
  if (arena != plan::Arena::Activations) { // persistent arenas are laid out in declaration order
    int64_t &end = persistentBytes[static_cast<int>(arena)];
    buffer.offset = end;
    end += (buffer.bytes + plan::kAlignment - 1) / plan::kAlignment * plan::kAlignment;
  }
  result.buffers.push_back(std::move(buffer));
  return static_cast<int>(result.buffers.size() - 1);
}

LogicalResult PlanLowering::declareParams() {
  int64_t index = -1;
  for (ParamOp param : module.getOps<ParamOp>()) {
    ++index;
    if (!stageParams.contains(param.getSymName()))
      continue;
    plan::Param p;
    p.index = index;
    p.name = param.getSymName().str();
    RankedTensorType type = param.getTensorType();
    RankedTensorType global = param.getGlobalType();
    p.shape.assign(global.getShape().begin(), global.getShape().end());
    if (ShardAttr shard = param.getShardAttr()) {
      p.shard.dim = static_cast<int>(shard.getDim());
      for (int64_t rank = 0; rank < shard.getNumRanks(); ++rank) {
        auto spans = shard.getRankSpans(rank);
        p.shard.spans.emplace_back(spans.begin(), spans.end());
      }
    }
    FailureOr<int> value = newBuffer(param, type, plan::Arena::Params);
    // Gradients and AdamW's moments are f32 whatever the weights' type (Megatron's main grads), or f64 for an
    // f64 model (gradient checks).
    Type stateElement = type.getElementType().isF64() ? type.getElementType() : Float32Type::get(type.getContext());
    RankedTensorType stateType = type.clone(stateElement);
    FailureOr<int> grad = newBuffer(param, stateType, plan::Arena::Grads);
    if (failed(value) || failed(grad))
      return failure();
    p.buffer = *value;
    p.grad = *grad;
    // The distributed optimizer keeps only this replica's chunk of the moments, declared below.
    if (!result.parallel.distributedOptimizer) {
      FailureOr<int> m = newBuffer(param, stateType, plan::Arena::Optimizer);
      FailureOr<int> v = newBuffer(param, stateType, plan::Arena::Optimizer);
      if (failed(m) || failed(v))
        return failure();
      p.expAvg = *m;
      p.expAvgSq = *v;
    }
    InitAttr init = param.getInit();
    p.init = init.getKind() == InitKind::Zeros  ? plan::InitKind::Zeros
             : init.getKind() == InitKind::Ones ? plan::InitKind::Ones
                                                : plan::InitKind::Normal;
    p.initStd = init.getEffectiveStd();
    // Megatron-LM: no weight decay on biases and on norm weights, that is on 1-D parameters.
    p.weightDecay = global.getRank() > 1;
    paramBuffers[p.name] = p.buffer;
    gradBuffers[p.name] = p.grad;
    result.params.push_back(std::move(p));
  }
  if (result.parallel.distributedOptimizer) {
    // ZeRO-1: each replica updates one chunk of the flat gradients arena, and holds AdamW's moments of that chunk
    // only: 1/D of the optimizer state.
    plan::OptimizerShard shard;
    shard.elements = plan::distributedOptimizerChunk(persistentBytes[static_cast<int>(plan::Arena::Grads)],
                                                     result.parallel.data);
    auto type = RankedTensorType::get({shard.elements}, Float32Type::get(module.getContext()));
    FailureOr<int> m = newBuffer(module.getOperation(), type, plan::Arena::Optimizer);
    FailureOr<int> v = newBuffer(module.getOperation(), type, plan::Arena::Optimizer);
    if (failed(m) || failed(v))
      return failure();
    shard.expAvg = *m;
    shard.expAvgSq = *v;
    result.optimizerShard = shard;
  }
  return success();
}

LogicalResult PlanLowering::declareInputs(func::FuncOp forward) {
  for (BlockArgument arg : forward.getArguments()) {
    auto name = forward.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "mt.input");
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!name || !type)
      return forward.emitError("mt-plan: argument #") << arg.getArgNumber()
                                                     << " of @forward needs a tensor type and an mt.input name";
    FailureOr<int> buffer = newBuffer(forward, type, plan::Arena::Inputs);
    if (failed(buffer))
      return failure();
    inputBuffers.push_back(*buffer);
    result.inputs.push_back({name.str(), *buffer});
  }
  return success();
}

void PlanLowering::bind(Value value, StringRef param, GradAccumulateOp sink) {
  if (value.hasOneUse()) {
    if (auto add = value.getDefiningOp<AddOp>()) {
      elidedGradientOps.insert(add);
      bind(add.getLhs(), param, sink);
      bind(add.getRhs(), param, sink);
      return;
    }
    // Mixed precision: a 16-bit gradient cast to the f32 parameter's type. The kernel that makes it writes into
    // the f32 gradient buffer instead, accumulating in f32 without rounding to 16 bits first (Megatron's
    // gradient-accumulation fusion), and the cast disappears.
    if (auto widen = value.getDefiningOp<CastOp>();
        widen && getElementTypeOrSelf(widen.getResult().getType()).isF32() && widen.getX().hasOneUse()) {
      elidedGradientOps.insert(widen);
      bind(widen.getX(), param, sink);
      return;
    }
    if (auto opResult = dyn_cast<OpResult>(value); opResult && isAccumulating(opResult)) {
      boundToGradient[value] = param;
      return;
    }
  }
  explicitSinks[sink].push_back(value);
}

FailureOr<int> PlanLowering::weightCopy(CastOp narrow, ParamRefOp ref) {
  auto type = cast<RankedTensorType>(narrow.getResult().getType());
  std::string key;
  llvm::raw_string_ostream(key) << ref.getName() << ":" << type.getElementType();
  if (auto it = weightCopies.find(key); it != weightCopies.end())
    return it->second;
  FailureOr<int> copy = newBuffer(narrow, type, plan::Arena::Weights);
  if (failed(copy))
    return failure();
  weightCopies[key] = *copy;
  castWeights.steps.push_back({"cast", locationName(narrow.getLoc()), {paramBuffers.lookup(ref.getName())},
                               {*copy}, {false}, stepAttrs(narrow)});
  return *copy;
}

/// A cast of a parameter to a 16-bit type: what mixed precision computes with (MixedPrecision.cpp).
ParamRefOp narrowedParam(Operation &op) {
  auto narrow = dyn_cast<CastOp>(op);
  if (!narrow)
    return {};
  Type to = getElementTypeOrSelf(narrow.getResult().getType());
  return to.isBF16() || to.isF16() ? narrow.getX().getDefiningOp<ParamRefOp>() : ParamRefOp();
}

void PlanLowering::bindGradients(func::FuncOp func) {
  boundToGradient.clear();
  elidedGradientOps.clear();
  explicitSinks.clear();
  func.walk([&](GradAccumulateOp sink) { bind(sink.getGradient(), sink.getName(), sink); });
}

FailureOr<plan::Program> PlanLowering::lowerProgram(func::FuncOp func, StringRef name, bool stopAtLogits) {
  plan::Program program;
  program.name = name.str();
  Operation *terminator = func.getBody().front().getTerminator();
  Value returned = terminator->getNumOperands() ? terminator->getOperand(0) : Value();
  auto finalLoss = returned ? returned.getDefiningOp<CrossEntropyOp>() : CrossEntropyOp();
  backwardStart = -1;
  buffers.clear();
  savedBuffers.clear();
  viewBase.clear();
  bindGradients(func);
  for (auto [arg, buffer] : llvm::zip(func.getArguments(), inputBuffers))
    buffers[arg] = buffer;

  std::vector<int> activationIds; // in creation order
  int gatheredLogits = -1;        // the whole logits of a vocab-parallel "logits" program
  auto baseOf = [&](int id) {
    auto it = viewBase.find(id);
    return it == viewBase.end() ? id : it->second;
  };
  auto emit = [&](plan::Step step) { program.steps.push_back(std::move(step)); };

  for (Operation &op : func.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      if (ret.getNumOperands())
        program.loss = gatheredLogits >= 0 ? gatheredLogits
                                           : buffers.lookup(stopAtLogits ? finalLoss.getLogits() : ret.getOperand(0));
      continue;
    }
    if (isa<BackwardStartOp>(op)) {
      backwardStart = static_cast<int>(program.steps.size());
      continue;
    }
    if (stopAtLogits && &op == finalLoss.getOperation()) {
      if (finalLoss.getVocabParallel()) {
        // Each rank holds its block of the vocabulary: generation samples from the whole row.
        auto local = cast<RankedTensorType>(finalLoss.getLogits().getType());
        SmallVector<int64_t> shape(local.getShape());
        shape.back() *= result.parallel.tensor;
        FailureOr<int> gathered = newBuffer(&op, local.clone(shape), plan::Arena::Activations);
        if (failed(gathered))
          return failure();
        activationIds.push_back(*gathered);
        gatheredLogits = *gathered;
        emit({"all_gather", "output_layer", {buffers.lookup(finalLoss.getLogits())}, {*gathered}, {false},
              {{"dim", static_cast<int64_t>(shape.size() - 1)}, {"group", std::string("tp")}}});
      }
      continue;
    }
    if (auto ref = dyn_cast<ParamRefOp>(op)) {
      buffers[ref.getResult()] = paramBuffers.lookup(ref.getName());
      continue;
    }
    // A buffer record for `value` over the bytes of buffer `base` (kernels read their dimensions from the record),
    // placed at its base's offset once the base is placed; the base lives as long as the alias is used.
    auto alias = [&](Value value, int base) -> FailureOr<int> {
      FailureOr<int> id = newBuffer(&op, cast<RankedTensorType>(value.getType()), result.buffers[base].arena);
      if (failed(id))
        return failure();
      result.buffers[*id].offset = result.buffers[base].offset;
      viewBase[*id] = baseOf(base);
      buffers[value] = *id;
      return id;
    };
    if (isa<SplitHeadsOp, MergeHeadsOp, CopyToGroupOp>(op)) {
      // A view: the same bytes under the result's shape.
      if (failed(alias(op.getResult(0), buffers.lookup(op.getOperand(0)))))
        return failure();
      continue;
    }
    if (ParamRefOp ref = narrowedParam(op)) {
      // Not a step: the program reads the parameter's 16-bit copy, which cast_weights keeps (Plan.h, Arena).
      FailureOr<int> copy = weightCopy(cast<CastOp>(op), ref);
      if (failed(copy))
        return failure();
      buffers[op.getResult(0)] = *copy;
      continue;
    }
    if (elidedGradientOps.contains(&op))
      continue;
    if (auto sink = dyn_cast<GradAccumulateOp>(op)) {
      for (Value value : explicitSinks.lookup(&op))
        emit({"accumulate", locationName(op.getLoc()), {buffers.lookup(value)}, {gradBuffers.lookup(sink.getName())},
              {true}, {}});
      continue;
    }

    plan::Step step;
    step.op = op.getName().stripDialect().str();
    step.loc = locationName(op.getLoc());
    step.attrs = stepAttrs(&op);
    for (Value operand : op.getOperands()) {
      auto buffer = buffers.find(operand);
      if (buffer == buffers.end())
        return op.emitOpError("mt-plan: an operand has no buffer (it is not defined by a lowered op)");
      step.inputs.push_back(buffer->second);
    }
    if (Operation *forwardOp = forwardOf(&op)) {
      auto saved = savedBuffers.find(forwardOp);
      if (saved == savedBuffers.end())
        return op.emitOpError("mt-plan: cannot find the statistics its forward op saved");
      step.inputs.insert(step.inputs.end(), saved->second.begin(), saved->second.end());
    }
    for (OpResult opResult : op.getResults()) {
      if (auto param = boundToGradient.find(opResult); param != boundToGradient.end()) {
        step.outputs.push_back(gradBuffers.lookup(param->second));
        step.accumulate.push_back(true);
        continue;
      }
      // In place: the result takes the bytes of an activation operand that dies here.
      if (std::optional<unsigned> index = overwritableOperand(&op)) {
        Value operand = op.getOperand(*index);
        int base = buffers.lookup(operand);
        if (operand.getType() == opResult.getType() && isLastUse(operand, &op) &&
            llvm::is_contained(activationIds, baseOf(base))) {
          FailureOr<int> buffer = alias(opResult, base);
          if (failed(buffer))
            return failure();
          step.outputs.push_back(*buffer);
          step.accumulate.push_back(false);
          continue;
        }
      }
      FailureOr<int> buffer = newBuffer(&op, cast<RankedTensorType>(opResult.getType()), plan::Arena::Activations);
      if (failed(buffer))
        return failure();
      activationIds.push_back(*buffer);
      buffers[opResult] = *buffer;
      bool accumulating = isAccumulating(opResult);
      if (accumulating) // an accumulating kernel needs a zeroed output when it is not a gradient buffer
        emit({"zero", step.loc, {}, {*buffer}, {false}, {}});
      step.outputs.push_back(*buffer);
      step.accumulate.push_back(accumulating);
    }
    // Workspace a device backend needs between a step's kernels, planned like any activation so that the memory
    // planner sees it: attention_grad's per-row sum of the recomputed probabilities and D = Σ P·dP, which its dq
    // kernel computes and its dk/dv kernel reads (lib/CodeGen/cuda/Attention.cuh). The CPU backend ignores it.
    if (auto grad = dyn_cast<AttentionGradOp>(op)) {
      ArrayRef<int64_t> q = cast<RankedTensorType>(grad.getQuery().getType()).getShape();
      Type wide = getElementTypeOrSelf(grad.getQuery().getType());
      if (!wide.isF64())
        wide = Float32Type::get(op.getContext()); // f32, also for 16-bit attention
      FailureOr<int> rows = newBuffer(&op, RankedTensorType::get({q[0], q[2], q[1], 2}, wide), plan::Arena::Activations);
      if (failed(rows))
        return failure();
      activationIds.push_back(*rows);
      step.outputs.push_back(*rows);
      step.accumulate.push_back(false);
      step.attrs["workspace_outputs"] = int64_t(1);
    }
    // Saved statistics are at least f32: a 16-bit mean or log-sum-exp would cost the backward its accuracy.
    auto elementType = op.getNumOperands() ? getElementTypeOrSelf(op.getOperand(0).getType()) : Type();
    if (elementType && (elementType.isBF16() || elementType.isF16()))
      elementType = Float32Type::get(op.getContext());
    for (const SmallVector<int64_t> &shape : savedShapes(&op)) {
      FailureOr<int> buffer = newBuffer(&op, RankedTensorType::get(shape, elementType), plan::Arena::Activations);
      if (failed(buffer))
        return failure();
      activationIds.push_back(*buffer);
      savedBuffers[&op].push_back(*buffer);
      step.outputs.push_back(*buffer);
      step.accumulate.push_back(false);
    }
    emit(std::move(step));
  }
  if (program.loss < 0 && returned)
    return func.emitError("mt-plan: @") << program.name << " must return its loss";

  // Lifetimes of this program's activations: from the step that writes them to the last step that touches them.
  // The loss stays alive to the end, where the runtime reads it.
  llvm::DenseMap<int, size_t> index;
  std::vector<plan::Lifetime> lifetimes;
  for (int id : activationIds) {
    index[id] = lifetimes.size();
    lifetimes.push_back({result.buffers[id].bytes, -1, -1});
  }
  for (auto [i, step] : llvm::enumerate(program.steps))
    for (const std::vector<int> *ids : {&step.inputs, &step.outputs})
      for (int id : *ids)
        if (auto it = index.find(baseOf(id)); it != index.end()) {
          plan::Lifetime &l = lifetimes[it->second];
          if (l.first < 0)
            l.first = static_cast<int>(i);
          l.last = static_cast<int>(i);
        }
  // A pipeline chunk's stash: activations its forward half writes and its backward half reads. They live in
  // the micro-batch's stash slot, laid out on their own; the rest (the halves' temporaries) share `activations`.
  std::vector<int> workIds;
  if (backwardStart >= 0) {
    std::vector<plan::Lifetime> stash;
    std::vector<int> stashIds;
    for (int id : activationIds) {
      const plan::Lifetime &l = lifetimes[index[id]];
      bool crosses = l.first >= 0 && l.first < backwardStart && l.last >= backwardStart;
      if (!crosses) {
        workIds.push_back(id);
        continue;
      }
      stashIds.push_back(id);
      stash.push_back({l.bytes, 0, 0}); // alive together, from the forward until the backward is done
    }
    plan::MemoryLayout stashLayout = plan::planMemory(stash, plan::kAlignment);
    for (auto [i, id] : llvm::enumerate(stashIds)) {
      result.buffers[id].arena = plan::Arena::Stash;
      result.buffers[id].offset = stashLayout.offsets[i];
    }
    int64_t &slot = result.arenaBytes[static_cast<int>(plan::Arena::Stash)];
    slot = std::max(slot, stashLayout.arenaBytes);
  } else {
    workIds = activationIds;
  }
  // The loss stays alive to the end (of the forward half, for a pipeline chunk), where the runtime reads it.
  if (auto it = index.find(baseOf(program.loss)); it != index.end())
    lifetimes[it->second].last = backwardStart >= 0 ? backwardStart - 1 : static_cast<int>(program.steps.size());
  std::vector<plan::Lifetime> work;
  for (int id : workIds)
    work.push_back(lifetimes[index[id]]);
  plan::MemoryLayout layout = plan::planMemory(work, plan::kAlignment);
  for (auto [i, id] : llvm::enumerate(workIds))
    result.buffers[id].offset = layout.offsets[i];
  for (auto [view, base] : viewBase) {
    result.buffers[view].arena = result.buffers[base].arena;
    result.buffers[view].offset = result.buffers[base].offset;
  }
  int64_t &arena = result.arenaBytes[static_cast<int>(plan::Arena::Activations)];
  arena = std::max(arena, layout.arenaBytes);
  program.peakActivationBytes = layout.peakLiveBytes;
  return program;
}

FailureOr<plan::Program> PlanLowering::lowerFinalizeGrads(func::FuncOp func) {
  plan::Program program;
  program.name = "finalize_grads";
  for (Operation &op : func.getBody().front().without_terminator()) {
    auto sum = dyn_cast<AllReduceGradsOp>(op);
    if (!sum)
      return op.emitOpError("mt-plan: @finalize_grads may only hold mt.all_reduce_grads");
    plan::Step step{"all_reduce_grads", locationName(op.getLoc()), {}, {}, {}, stepAttrs(&op)};
    for (Attribute name : sum.getParams()) {
      auto grad = gradBuffers.find(cast<FlatSymbolRefAttr>(name).getValue());
      if (grad == gradBuffers.end()) // another pipeline stage's parameter
        continue;
      step.outputs.push_back(grad->second);
      step.accumulate.push_back(false);
    }
    if (!step.outputs.empty())
      program.steps.push_back(std::move(step));
  }
  return program;
}

LogicalResult PlanLowering::schedulePipeline() {
  plan::PipelineInfo &p = result.pipeline;
  if (p.microBatches % result.parallel.data != 0)
    return emitError(module.getLoc(), "mt-plan: ") << p.microBatches << " micro-batches do not split over "
                                         << result.parallel.data << " data-parallel replicas";
  p.microBatches /= result.parallel.data;
  std::string error;
  megatron::schedule::Schedule schedule = megatron::schedule::pipelineSchedule(
      static_cast<int>(p.stages), static_cast<int>(p.microBatches), static_cast<int>(p.virtualStages), error);
  if (!error.empty())
    return emitError(module.getLoc(), "mt-plan: ") << error;
  // The stash slots: the most forwards whose backward has not run yet, at any point of the stage's order.
  int64_t live = 0;
  for (const megatron::schedule::Step &step : schedule.steps[static_cast<size_t>(p.stage)]) {
    p.schedule.push_back({step.forward, step.microBatch, step.chunk});
    live += step.forward ? 1 : -1;
    p.stashSlots = std::max(p.stashSlots, live);
  }
  return success();
}

LogicalResult PlanLowering::lowerTrainingChunk(int64_t local) {
  std::string chunk = std::to_string(result.pipeline.globalChunk(local));
  auto step = module.lookupSymbol<func::FuncOp>("train_step_chunk" + chunk);
  if (!step)
    return emitError(module.getLoc(), "mt-plan: the module has no @train_step_chunk") << chunk << "; run mt-autodiff first";
  FailureOr<plan::Program> whole = lowerProgram(step, "train_step_chunk" + chunk, false);
  if (failed(whole))
    return failure();
  if (backwardStart < 0)
    return step.emitError("mt-plan: @train_step_chunk") << chunk << " has no mt.backward_start";
  plan::Program forwardHalf, backwardHalf;
  forwardHalf.name = result.pipeline.trainingProgram({true, 0, local});
  backwardHalf.name = result.pipeline.trainingProgram({false, 0, local});
  forwardHalf.chunk = backwardHalf.chunk = static_cast<int>(local);
  forwardHalf.loss = whole->loss;
  forwardHalf.peakActivationBytes = backwardHalf.peakActivationBytes = whole->peakActivationBytes;
  forwardHalf.steps.assign(whole->steps.begin(), whole->steps.begin() + backwardStart);
  backwardHalf.steps.assign(whole->steps.begin() + backwardStart, whole->steps.end());
  result.programs.push_back(std::move(forwardHalf));
  result.programs.push_back(std::move(backwardHalf));
  return success();
}

FailureOr<plan::Plan> PlanLowering::run() {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  int64_t chunks = pipelineChunks(module);
  auto trainStep = module.lookupSymbol<func::FuncOp>(chunks > 1 ? "train_step_chunk0" : "train_step");
  if (!forward || !trainStep)
    return emitError(module.getLoc(), "mt-plan: the module needs @forward and @train_step; run mt-autodiff first");

  FailureOr<megatron::ModelFigures> figures = computeModelFigures(module);
  if (failed(figures))
    return failure();
  if (auto family = module->getAttrOfType<StringAttr>("mt.model"))
    result.model.family = family.str();
  result.model.fingerprint = modelFingerprint(module);
  result.model.numMicroBatches = figures->microBatchesPerIteration;
  result.model.parameters = figures->parameterCount;
  result.model.forwardFlopsPerMicroBatch = figures->forwardFlopsPerMicroBatch;
  result.parallel.tensor = tensorParallelSize(module);
  result.parallel.sequence = module->hasAttr(kSequenceParallelAttr);
  if (auto data = module->getAttrOfType<IntegerAttr>(kDataParallelAttr))
    result.parallel.data = data.getInt();
  result.parallel.distributedOptimizer = module->hasAttr(kDistributedOptimizerAttr);

  // This stage's chunks and the parameters they read.
  plan::PipelineInfo &pipeline = result.pipeline;
  if (auto stages = module->getAttrOfType<IntegerAttr>(kPipelineParallelAttr))
    pipeline.stages = stages.getInt();
  pipeline.virtualStages = chunks / pipeline.stages;
  pipeline.stage = stage;
  pipeline.microBatches = result.model.numMicroBatches;
  SmallVector<func::FuncOp> stageFunctions;
  if (chunks == 1)
    stageFunctions.push_back(trainStep);
  for (int64_t v = 0; chunks > 1 && v < pipeline.virtualStages; ++v)
    stageFunctions.push_back(
        module.lookupSymbol<func::FuncOp>("train_step_chunk" + std::to_string(pipeline.globalChunk(v))));
  for (func::FuncOp func : stageFunctions) {
    if (!func)
      return emitError(module.getLoc(), "mt-plan: a pipeline chunk of stage ") << stage << " has no training step";
    func.walk([&](ParamRefOp ref) { stageParams.insert(ref.getName()); });
  }

  if (failed(declareParams()) || failed(declareInputs(forward)))
    return failure();
  if (chunks > 1) {
    if (failed(schedulePipeline()))
      return failure();
    for (int64_t v = 0; v < pipeline.virtualStages; ++v) {
      std::string chunk = std::to_string(pipeline.globalChunk(v));
      if (failed(lowerTrainingChunk(v)))
        return failure();
      auto chunkForward = module.lookupSymbol<func::FuncOp>("forward_chunk" + chunk);
      if (!chunkForward)
        return emitError(module.getLoc(), "mt-plan: the module has no @forward_chunk") << chunk;
      bool last = pipeline.globalChunk(v) == chunks - 1;
      for (bool stopAtLogits : {false, true}) {
        if (stopAtLogits && last && !chunkForward.getBody().front().getTerminator()->getOperand(0)
                                          .getDefiningOp<CrossEntropyOp>())
          continue;
        FailureOr<plan::Program> program =
            lowerProgram(chunkForward, (stopAtLogits ? "logits_chunk" : "forward_chunk") + chunk, stopAtLogits && last);
        if (failed(program))
          return failure();
        program->chunk = static_cast<int>(v);
        result.programs.push_back(std::move(*program));
      }
    }
  } else {
    SmallVector<std::tuple<func::FuncOp, StringRef, bool>> programs = {{trainStep, "train_step", false},
                                                                        {forward, "forward", false}};
    // Generation needs the logits of a language model: its forward up to its one loss, a cross-entropy.
    Value loss = forward.getBody().front().getTerminator()->getOperand(0);
    if (loss.getDefiningOp<CrossEntropyOp>())
      programs.push_back({forward, "logits", true});
    for (auto [func, name, stopAtLogits] : programs) {
      FailureOr<plan::Program> program = lowerProgram(func, name, stopAtLogits);
      if (failed(program))
        return failure();
      result.programs.push_back(std::move(*program));
    }
  }
  if (!castWeights.steps.empty()) {
    castWeights.name = "cast_weights";
    result.programs.push_back(std::move(castWeights));
  }
  if (auto finalize = module.lookupSymbol<func::FuncOp>("finalize_grads")) {
    FailureOr<plan::Program> program = lowerFinalizeGrads(finalize);
    if (failed(program))
      return failure();
    result.programs.push_back(std::move(*program));
  }
  for (int arena = 0; arena < plan::kNumArenas; ++arena)
    if (arena != static_cast<int>(plan::Arena::Activations) && arena != static_cast<int>(plan::Arena::Stash))
      result.arenaBytes[arena] = persistentBytes[arena];
  return std::move(result);
}

} // namespace

FailureOr<std::vector<plan::Plan>> mt::buildPlans(ModuleOp module) {
  auto stages = module->getAttrOfType<IntegerAttr>(kPipelineParallelAttr);
  std::vector<plan::Plan> plans;
  for (int64_t stage = 0; stage < (stages ? stages.getInt() : 1); ++stage) {
    FailureOr<plan::Plan> plan = PlanLowering(module, stage).run();
    if (failed(plan))
      return failure();
    plans.push_back(std::move(*plan));
  }
  // On GPUs the messages are NCCL's: untagged, matched in issue order and blocking until the peer's call runs.
  // A schedule whose messages would hang or cross there is refused here, where it is made, not on the GPUs.
  if (std::string problem = plan::checkInOrderMessages(plans); !problem.empty())
    return emitError(module.getLoc(), "mt-plan: ") << problem;
  return plans;
}

FailureOr<plan::Plan> mt::buildPlan(ModuleOp module) {
  if (pipelineChunks(module) > 1)
    return emitError(module.getLoc(), "mt-plan: a module split into pipeline stages has one plan per stage (buildPlans)");
  return PlanLowering(module, 0).run();
}
