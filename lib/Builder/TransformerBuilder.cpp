//===- TransformerBuilder.cpp - Emits the blocks of a transformer ----------===//
//
// Parameter names follow Megatron-core's local (non-Transformer-Engine) modules, e.g.
// `decoder.layers.3.self_attention.linear_qkv.weight`, so checkpoints convert by name. Every op is located at the
// name of the module that owns it, which later stages use in their messages.
//
//===----------------------------------------------------------------------===//

#include "TransformerBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mt;
using megatron::ModelConfig;
using megatron::Normalization;
using megatron::PositionEmbedding;

TransformerBuilder::TransformerBuilder(ModuleOp module, const ModelConfig &config)
    : module(module), cfg(config), b(module.getContext()), paramBuilder(module.getContext()),
      f32(Float32Type::get(module.getContext())), i32(IntegerType::get(module.getContext(), 32)) {}

Location TransformerBuilder::loc(const std::string &name) {
  return NameLoc::get(StringAttr::get(module.getContext(), name));
}

RankedTensorType TransformerBuilder::floatTensor(ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, f32);
}

RankedTensorType TransformerBuilder::intTensor(ArrayRef<int64_t> shape) { return RankedTensorType::get(shape, i32); }

func::FuncOp TransformerBuilder::beginForward(ArrayRef<std::pair<StringRef, RankedTensorType>> inputs) {
  MLIRContext *context = module.getContext();
  SmallVector<Type> types;
  for (const auto &input : inputs)
    types.push_back(input.second);
  b.setInsertionPointToEnd(module.getBody());
  auto func = b.create<func::FuncOp>(loc("forward"), "forward",
                                     FunctionType::get(context, types, {floatTensor({})}));
  for (auto [i, input] : llvm::enumerate(inputs))
    func.setArgAttr(i, "mt.input", StringAttr::get(context, input.first));
  Block *body = func.addEntryBlock();
  for (auto [i, input] : llvm::enumerate(inputs))
    body->getArgument(i).setLoc(loc(input.first.str()));
  paramBuilder.setInsertionPoint(func); // declarations go before @forward, in creation order
  b.setInsertionPointToStart(body);
  return func;
}

void TransformerBuilder::endForward(Value loss) { b.create<func::ReturnOp>(loc("forward"), loss); }

InitAttr TransformerBuilder::normalInit() {
  return InitAttr::get(module.getContext(), InitKind::Normal, cfg.initMethodStd);
}
InitAttr TransformerBuilder::scaledInit(int64_t stackLayers) {
  return InitAttr::get(module.getContext(), InitKind::ScaledNormal, cfg.initMethodStd, stackLayers);
}
InitAttr TransformerBuilder::zerosInit() { return InitAttr::get(module.getContext(), InitKind::Zeros); }
InitAttr TransformerBuilder::onesInit() { return InitAttr::get(module.getContext(), InitKind::Ones); }

Value TransformerBuilder::param(const std::string &name, ArrayRef<int64_t> shape, InitAttr init) {
  RankedTensorType type = floatTensor(shape);
  // A set, not module.lookupSymbol: that scans the module, which made building quadratic in the layers.
  if (declared.insert(name).second) {
    assert(init && "the first reference to a parameter declares it and needs its init");
    paramBuilder.create<ParamOp>(loc(name), name, type, init, /*shard=*/ShardAttr());
  }
  return b.create<ParamRefOp>(loc(name), type, FlatSymbolRefAttr::get(module.getContext(), name));
}

static ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

Value TransformerBuilder::linear(Value x, const std::string &prefix, int64_t out, InitAttr weightInit, bool bias) {
  int64_t in = shapeOf(x).back();
  Value weight = param(prefix + ".weight", {out, in}, weightInit);
  Value biasValue = bias ? param(prefix + ".bias", {out}, zerosInit()) : Value();
  SmallVector<int64_t> resultShape(shapeOf(x).drop_back());
  resultShape.push_back(out);
  return b.create<LinearOp>(loc(prefix), floatTensor(resultShape), x, weight, biasValue);
}

Value TransformerBuilder::norm(Value x, const std::string &prefix) {
  int64_t hidden = shapeOf(x).back();
  Value weight = param(prefix + ".weight", {hidden}, onesInit());
  FloatAttr epsilon = b.getF64FloatAttr(cfg.normEpsilon);
  if (cfg.normalization == Normalization::RMSNorm)
    return b.create<RmsNormOp>(loc(prefix), x.getType(), x, weight, epsilon);
  Value bias = param(prefix + ".bias", {hidden}, zerosInit());
  return b.create<LayerNormOp>(loc(prefix), x.getType(), x, weight, bias, epsilon);
}

Value TransformerBuilder::dropout(Value x, double rate) {
  if (rate == 0.0)
    return x;
  return b.create<DropoutOp>(x.getLoc(), x.getType(), x, b.getF64FloatAttr(rate), /*rng_stream=*/IntegerAttr(),
                            /*shard_dim=*/IntegerAttr());
}

Value TransformerBuilder::add(Value a, Value c) { return b.create<AddOp>(c.getLoc(), a.getType(), a, c); }

Value TransformerBuilder::embed(Value tokens) {
  int64_t hidden = cfg.hiddenSize;
  Value table = param("embedding.word_embeddings.weight", {cfg.paddedVocabSize(), hidden}, normalInit());
  SmallVector<int64_t> shape(shapeOf(tokens));
  shape.push_back(hidden);
  Value x = b.create<EmbeddingOp>(loc("embedding.word_embeddings"), floatTensor(shape), tokens, table);
  if (cfg.positionEmbeddingType == PositionEmbedding::LearnedAbsolute) {
    Value positions =
        param("embedding.position_embeddings.weight", {cfg.maxPositionEmbeddings, hidden}, normalInit());
    x = b.create<AddPositionEmbeddingOp>(loc("embedding.position_embeddings"), x.getType(), x, positions);
  }
  return x;
}

Value TransformerBuilder::relativePositionBias(const std::string &stack, int64_t querySeq, int64_t keySeq,
                                               bool bidirectional) {
  int64_t buckets = cfg.relativeAttentionNumBuckets, heads = cfg.numAttentionHeads;
  Value table = param(stack + ".relative_position_bias.weight", {buckets, heads}, normalInit());
  return b.create<RelativePositionBiasOp>(loc(stack + ".relative_position_bias"),
                                          floatTensor({heads, querySeq, keySeq}), table, buckets,
                                          cfg.relativeAttentionMaxDistance, bidirectional);
}

/// Applies RoPE to query or key heads when the model uses it.
static Value maybeRope(OpBuilder &b, const ModelConfig &cfg, Value heads) {
  if (cfg.positionEmbeddingType != PositionEmbedding::Rope)
    return heads;
  return b.create<RopeOp>(heads.getLoc(), heads.getType(), heads, b.getF64FloatAttr(cfg.rotaryBase),
                            b.getI64IntegerAttr(cfg.rotaryDim()));
}

/// Core attention, its heads merged back, and the output projection `linear_proj`.
static Value attend(TransformerBuilder &t, const std::string &prefix, Value q, Value k, Value v, AttnMaskType mask,
                    Value paddingMask, Value bias, int64_t stackLayers) {
  const ModelConfig &cfg = t.config();
  OpBuilder &b = t.builder();
  Location loc = NameLoc::get(b.getStringAttr(prefix + ".core_attention"));
  double scale = 1.0 / std::sqrt(static_cast<double>(cfg.kvChannels));
  Value context = b.create<AttentionOp>(loc, q.getType(), AttnMaskTypeAttr::get(b.getContext(), mask), q, k, v,
                                        paddingMask, bias, b.getI64IntegerAttr(cfg.numAttentionHeads),
                                        b.getI64IntegerAttr(cfg.numQueryGroups), b.getF64FloatAttr(scale),
                                        b.getF64FloatAttr(cfg.attentionDropout), /*rng_stream=*/IntegerAttr(),
                                        /*head_shard=*/UnitAttr());
  ArrayRef<int64_t> s = shapeOf(q);
  Value merged = b.create<MergeHeadsOp>(loc, t.floatTensor({s[0], s[1], s[2] * s[3]}), context);
  return t.linear(merged, prefix + ".linear_proj", cfg.hiddenSize, t.scaledInit(stackLayers), cfg.addBiasLinear);
}

Value TransformerBuilder::selfAttention(Value x, const std::string &prefix, const LayerInputs &inputs,
                                        int64_t stackLayers) {
  int64_t heads = cfg.numAttentionHeads, groups = cfg.numQueryGroups, headDim = cfg.kvChannels;
  Value qkv = linear(x, prefix + ".linear_qkv", (heads + 2 * groups) * headDim, normalInit(), cfg.addBiasLinear);
  ArrayRef<int64_t> s = shapeOf(x);
  auto split = b.create<SplitQkvOp>(loc(prefix + ".linear_qkv"), floatTensor({s[0], s[1], heads, headDim}),
                                    floatTensor({s[0], s[1], groups, headDim}),
                                    floatTensor({s[0], s[1], groups, headDim}), qkv, heads, groups);
  Value q = maybeRope(b, cfg, split.getQuery());
  Value k = maybeRope(b, cfg, split.getKey());
  return attend(*this, prefix, q, k, split.getValue(), inputs.maskType, inputs.paddingMask, inputs.positionBias,
                stackLayers);
}

Value TransformerBuilder::crossAttention(Value x, const std::string &prefix, const LayerInputs &inputs,
                                         int64_t stackLayers) {
  int64_t heads = cfg.numAttentionHeads, groups = cfg.numQueryGroups, headDim = cfg.kvChannels;
  Value qFlat = linear(x, prefix + ".linear_q", heads * headDim, normalInit(), cfg.addBiasLinear);
  Value kvFlat = linear(inputs.encoderOutput, prefix + ".linear_kv", 2 * groups * headDim, normalInit(),
                        cfg.addBiasLinear);
  ArrayRef<int64_t> s = shapeOf(x), e = shapeOf(inputs.encoderOutput);
  Value q = b.create<SplitHeadsOp>(loc(prefix + ".linear_q"), floatTensor({s[0], s[1], heads, headDim}), qFlat);
  auto kv = b.create<SplitKvOp>(loc(prefix + ".linear_kv"), floatTensor({e[0], e[1], groups, headDim}),
                                floatTensor({e[0], e[1], groups, headDim}), kvFlat, groups);
  return attend(*this, prefix, q, kv.getKey(), kv.getValue(), AttnMaskType::Padding, inputs.encoderMask, Value(),
                stackLayers);
}

Value TransformerBuilder::mlp(Value x, const std::string &prefix, int64_t stackLayers) {
  int64_t ffn = cfg.ffnHiddenSize;
  Value h = linear(x, prefix + ".linear_fc1", cfg.swiglu ? 2 * ffn : ffn, normalInit(), cfg.addBiasLinear);
  if (cfg.swiglu) {
    SmallVector<int64_t> shape(shapeOf(h));
    shape.back() = ffn;
    h = b.create<SwigluOp>(h.getLoc(), floatTensor(shape), h);
  } else {
    h = b.create<GeluOp>(h.getLoc(), h.getType(), h, GeluApproximationAttr::get(b.getContext(), GeluApproximation::Tanh));
  }
  return linear(h, prefix + ".linear_fc2", cfg.hiddenSize, scaledInit(stackLayers), cfg.addBiasLinear);
}

Value TransformerBuilder::layer(Value x, const std::string &prefix, const LayerInputs &inputs, int64_t stackLayers) {
  Value attention = selfAttention(norm(x, prefix + ".input_layernorm"), prefix + ".self_attention", inputs,
                                  stackLayers);
  x = add(x, dropout(attention, cfg.hiddenDropout));
  if (inputs.encoderOutput) {
    Value cross = crossAttention(norm(x, prefix + ".pre_cross_attn_layernorm"), prefix + ".cross_attention", inputs,
                                 stackLayers);
    x = add(x, dropout(cross, cfg.hiddenDropout));
  }
  Value mlpOut = mlp(norm(x, prefix + ".pre_mlp_layernorm"), prefix + ".mlp", stackLayers);
  return add(x, dropout(mlpOut, cfg.hiddenDropout));
}

Value TransformerBuilder::stack(Value x, const std::string &stackName, int64_t count, const LayerInputs &inputs) {
  for (int64_t i = 0; i < count; ++i)
    x = layer(x, stackName + ".layers." + std::to_string(i), inputs, count);
  return norm(x, stackName + ".final_layernorm");
}

Value TransformerBuilder::logits(Value x, Value outputWeight, const std::string &biasName) {
  int64_t vocab = shapeOf(outputWeight)[0];
  Value bias = biasName.empty() ? Value() : param(biasName, {vocab}, zerosInit());
  SmallVector<int64_t> shape(shapeOf(x).drop_back());
  shape.push_back(vocab);
  return b.create<LinearOp>(loc("output_layer"), floatTensor(shape), x, outputWeight, bias);
}

Value TransformerBuilder::crossEntropy(Value logitsValue, Value labels, Value lossMask) {
  return b.create<CrossEntropyOp>(loc("loss"), floatTensor({}), logitsValue, labels, lossMask);
}
