//===- ModelBuilder.cpp - GPT, BERT and T5 as mt IR ------------------------===//
//
// Each model reads its micro-batch from named function arguments (docs/dialect.md lists them) and returns its
// training loss. The structure follows Megatron-core's GPTModel, BertModel and T5Model.
//
//===----------------------------------------------------------------------===//

#include "megatron/Builder/ModelBuilder.h"

#include "TransformerBuilder.h"

#include "megatron/Analysis/ModelFiguresAnalysis.h"

using namespace mlir;
using namespace mlir::mt;
using megatron::ModelConfig;
using megatron::ModelKind;
using megatron::PositionEmbedding;

namespace {

void buildGpt(TransformerBuilder &t) {
  const ModelConfig &c = t.config();
  int64_t batch = c.microBatchSize, seq = c.seqLength;
  func::FuncOp f = t.beginForward({{"tokens", t.intTensor({batch, seq})},
                                   {"labels", t.intTensor({batch, seq})},
                                   {"loss_mask", t.floatTensor({batch, seq})}});
  Value x = t.dropout(t.embed(f.getArgument(0)), c.hiddenDropout);
  x = t.stack(x, "decoder", c.numLayers, LayerInputs{AttnMaskType::Causal});
  Value output = c.untieEmbeddingsAndOutputWeights
                     ? t.param("output_layer.weight", {c.paddedVocabSize(), c.hiddenSize}, t.normalInit())
                     : t.param("embedding.word_embeddings.weight", {c.paddedVocabSize(), c.hiddenSize}, {});
  t.endForward(t.crossEntropy(t.logits(x, output, ""), f.getArgument(1), f.getArgument(2)));
}

void buildBert(TransformerBuilder &t) {
  const ModelConfig &c = t.config();
  int64_t batch = c.microBatchSize, seq = c.seqLength, hidden = c.hiddenSize;
  SmallVector<std::pair<StringRef, RankedTensorType>> inputs = {{"tokens", t.intTensor({batch, seq})},
                                                                {"padding_mask", t.intTensor({batch, seq})},
                                                                {"labels", t.intTensor({batch, seq})},
                                                                {"loss_mask", t.floatTensor({batch, seq})}};
  if (c.bertBinaryHead) {
    inputs.push_back({"tokentype_ids", t.intTensor({batch, seq})});
    inputs.push_back({"sentence_order", t.intTensor({batch})});
  }
  func::FuncOp f = t.beginForward(inputs);
  Value x = t.embed(f.getArgument(0));
  if (c.bertBinaryHead) {
    Value table = t.param("embedding.tokentype_embeddings.weight", {2, hidden}, t.normalInit());
    x = t.add(x, t.builder().create<EmbeddingOp>(x.getLoc(), t.floatTensor({batch, seq, hidden}),
                                                 f.getArgument(4), table));
  }
  x = t.dropout(x, c.hiddenDropout);
  x = t.stack(x, "encoder", c.numLayers, LayerInputs{AttnMaskType::Padding, f.getArgument(1)});

  // Masked-LM head: dense + GeLU + norm, then logits against the tied word embeddings with their own bias.
  Value h = t.linear(x, "lm_head.dense", hidden, t.normalInit(), /*bias=*/true);
  h = t.builder().create<GeluOp>(h.getLoc(), h.getType(), h,
                                 GeluApproximationAttr::get(h.getContext(), GeluApproximation::Tanh));
  h = t.norm(h, "lm_head.layer_norm");
  Value words = t.param("embedding.word_embeddings.weight", {c.paddedVocabSize(), hidden}, {});
  Value loss = t.crossEntropy(t.logits(h, words, "output_layer.bias"), f.getArgument(2), f.getArgument(3));

  if (c.bertBinaryHead) { // sentence-order prediction from the pooled first token
    Value poolerWeight = t.param("pooler.dense.weight", {hidden, hidden}, t.normalInit());
    Value poolerBias = t.param("pooler.dense.bias", {hidden}, t.zerosInit());
    Value pooled = t.builder().create<PoolerOp>(NameLoc::get(t.builder().getStringAttr("pooler")),
                                                t.floatTensor({batch, hidden}), x, poolerWeight, poolerBias);
    Value order = t.linear(pooled, "binary_head", 2, t.normalInit(), /*bias=*/true);
    loss = t.add(loss, t.crossEntropy(order, f.getArgument(5), Value()));
  }
  t.endForward(loss);
}

void buildT5(TransformerBuilder &t) {
  const ModelConfig &c = t.config();
  int64_t batch = c.microBatchSize, encSeq = c.seqLength, decSeq = c.decoderSeqLength;
  func::FuncOp f = t.beginForward({{"encoder_tokens", t.intTensor({batch, encSeq})},
                                   {"decoder_tokens", t.intTensor({batch, decSeq})},
                                   {"encoder_padding_mask", t.intTensor({batch, encSeq})},
                                   {"labels", t.intTensor({batch, decSeq})},
                                   {"loss_mask", t.floatTensor({batch, decSeq})}});
  Value encoderMask = f.getArgument(2);
  bool relative = c.positionEmbeddingType == PositionEmbedding::Relative;

  LayerInputs encoderInputs{AttnMaskType::Padding, encoderMask};
  if (relative)
    encoderInputs.positionBias = t.relativePositionBias("encoder", encSeq, encSeq, /*bidirectional=*/true);
  Value encoded = t.dropout(t.embed(f.getArgument(0)), c.hiddenDropout);
  encoded = t.stack(encoded, "encoder", c.encoderNumLayers, encoderInputs);

  LayerInputs decoderInputs{AttnMaskType::Causal};
  if (relative)
    decoderInputs.positionBias = t.relativePositionBias("decoder", decSeq, decSeq, /*bidirectional=*/false);
  decoderInputs.encoderOutput = encoded;
  decoderInputs.encoderMask = encoderMask;
  Value decoded = t.dropout(t.embed(f.getArgument(1)), c.hiddenDropout);
  decoded = t.stack(decoded, "decoder", c.decoderNumLayers, decoderInputs);

  Value words = t.param("embedding.word_embeddings.weight", {c.paddedVocabSize(), c.hiddenSize}, {});
  Value logits = t.logits(decoded, words, "lm_head.output_layer.bias");
  t.endForward(t.crossEntropy(logits, f.getArgument(3), f.getArgument(4)));
}

} // namespace

OwningOpRef<ModuleOp> mt::buildModel(MLIRContext &context, const ModelConfig &config) {
  Location loc = NameLoc::get(StringAttr::get(&context, megatron::toString(config.kind)));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  Builder attrs(&context);
  (*module)->setAttr("mt.model", attrs.getStringAttr(megatron::toString(config.kind)));
  (*module)->setAttr(kNumMicroBatchesAttr, attrs.getI64IntegerAttr(config.numMicroBatches()));
  // The weights stay f32 here; --mt-mixed-precision reads this and makes the compute 16-bit.
  if (config.bf16 || config.fp16)
    (*module)->setAttr("mt.precision", attrs.getStringAttr(config.bf16 ? "bf16" : "fp16"));

  TransformerBuilder t(*module, config);
  switch (config.kind) {
  case ModelKind::GPT:
    buildGpt(t);
    break;
  case ModelKind::BERT:
    buildBert(t);
    break;
  case ModelKind::T5:
    buildT5(t);
    break;
  }
  return module;
}
