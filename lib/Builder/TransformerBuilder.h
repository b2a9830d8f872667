//===- TransformerBuilder.h - Emits the blocks of a transformer -*- C++ -*-===//
//
// The building blocks GPT, BERT and T5 share (embeddings, norms, attention, MLP, layers), emitted as mt ops.
// Private to lib/Builder.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_LIB_BUILDER_TRANSFORMERBUILDER_H
#define MEGATRON_LIB_BUILDER_TRANSFORMERBUILDER_H

#include "dialects/mt/MtOps.h"
#include "megatron/Model/ModelConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"

#include <string>

namespace mlir::mt {

/// What a layer's self-attention sees, and what else the layer attends to.
struct LayerInputs {
  AttnMaskType maskType = AttnMaskType::Causal;
  Value paddingMask;       // [batch, seq] for AttnMaskType::Padding
  Value positionBias;      // [heads, seq, seq] (T5's relative bias), or null
  Value encoderOutput;     // T5 decoder: adds cross-attention to this
  Value encoderMask;       // [batch, encoder seq], with encoderOutput
};

class TransformerBuilder {
public:
  TransformerBuilder(ModuleOp module, const megatron::ModelConfig &config);

  /// Creates `@forward` with one argument per named input and positions the builder in its body.
  func::FuncOp beginForward(ArrayRef<std::pair<StringRef, RankedTensorType>> inputs);
  void endForward(Value loss);

  RankedTensorType floatTensor(ArrayRef<int64_t> shape);
  RankedTensorType intTensor(ArrayRef<int64_t> shape);

  // Initialisations, as Megatron-LM uses them.
  InitAttr normalInit();
  InitAttr scaledInit(int64_t stackLayers);
  InitAttr zerosInit();
  InitAttr onesInit();

  /// Declares the parameter `name` (once) and reads it in the function being built.
  Value param(const std::string &name, ArrayRef<int64_t> shape, InitAttr init);

  Value linear(Value x, const std::string &prefix, int64_t out, InitAttr weightInit, bool bias);
  Value norm(Value x, const std::string &prefix);
  Value dropout(Value x, double rate);
  Value add(Value a, Value b);

  /// Word embeddings (shared table `embedding.word_embeddings.weight`), plus learned positions when configured,
  /// then hidden dropout.
  Value embed(Value tokens);
  /// T5's relative position bias for a stack: `<stack>.relative_position_bias.weight`.
  Value relativePositionBias(const std::string &stack, int64_t querySeq, int64_t keySeq, bool bidirectional);

  Value selfAttention(Value x, const std::string &prefix, const LayerInputs &inputs, int64_t stackLayers);
  Value crossAttention(Value x, const std::string &prefix, const LayerInputs &inputs, int64_t stackLayers);
  Value mlp(Value x, const std::string &prefix, int64_t stackLayers);
  /// A pre-norm transformer layer, Megatron's default: x + attn(norm(x)) [+ cross(norm(.))] + mlp(norm(.)).
  Value layer(Value x, const std::string &prefix, const LayerInputs &inputs, int64_t stackLayers);
  /// `count` layers named `<stack>.layers.<i>` and the stack's final norm `<stack>.final_layernorm`.
  Value stack(Value x, const std::string &stackName, int64_t count, const LayerInputs &inputs);

  /// Logits against the (tied or untied) output weight and, if given, an output bias parameter.
  Value logits(Value x, Value outputWeight, const std::string &biasName);
  Value crossEntropy(Value logits, Value labels, Value lossMask);

  OpBuilder &builder() { return b; }
  const megatron::ModelConfig &config() const { return cfg; }

private:
  Location loc(const std::string &name);

  ModuleOp module;
  const megatron::ModelConfig &cfg;
  OpBuilder b;
  OpBuilder paramBuilder; // inserts mt.param declarations before @forward, in creation order
  llvm::StringSet<> declared;
  Type f32;
  Type i32;
};

} // namespace mlir::mt

#endif // MEGATRON_LIB_BUILDER_TRANSFORMERBUILDER_H
