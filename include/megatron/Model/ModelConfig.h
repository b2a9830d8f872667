//===- ModelConfig.h - A model's shape, as Megatron-LM's flags give it -*- C++ -*-===//
//
// Plain C++ with no MLIR or LLVM types, so that every tool and the runtime can use it cheaply. Field names follow
// Megatron-LM's flags (--num-layers is numLayers, and so on).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_MODEL_MODELCONFIG_H
#define MEGATRON_MODEL_MODELCONFIG_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace megatron {

enum class ModelKind { GPT, BERT, T5 };
enum class Normalization { LayerNorm, RMSNorm };
/// learned_absolute and rope as Megatron's --position-embedding-type; relative is T5's bucketed bias.
enum class PositionEmbedding { LearnedAbsolute, Rope, Relative };

struct ModelConfig {
  ModelKind kind = ModelKind::GPT;

  // Shape. A value of 0 means "derive it the way Megatron-LM does" (see resolveDefaults()).
  int64_t numLayers = 0;
  int64_t encoderNumLayers = 0; // T5
  int64_t decoderNumLayers = 0; // T5
  int64_t hiddenSize = 0;
  int64_t ffnHiddenSize = 0;     // 4·hidden, or Megatron's 2/3·4·hidden rounded down to 64 with SwiGLU
  int64_t numAttentionHeads = 0;
  int64_t kvChannels = 0;        // hidden / heads
  bool groupQueryAttention = false;
  int64_t numQueryGroups = 0;    // heads unless --group-query-attention
  int64_t seqLength = 0;         // the encoder's for T5
  int64_t decoderSeqLength = 0;  // T5
  int64_t maxPositionEmbeddings = 0; // seq length
  int64_t microBatchSize = 1;
  int64_t globalBatchSize = 0;   // micro batch size

  // Vocabulary.
  int64_t vocabSize = 0;
  int64_t makeVocabSizeDivisibleBy = 128;
  int64_t tensorModelParallelSize = 1; // Megatron pads the vocabulary to a multiple of this times the above
  bool sequenceParallel = false;       // checked here; the layout itself is megatron-opt --mt-shard's
  // Pipeline parallelism, checked here (Megatron's arguments.py); the split is megatron-opt --mt-pipeline's.
  int64_t pipelineModelParallelSize = 1;
  int64_t virtualPipelineModelParallelSize = 0;  // 0: not given
  int64_t numLayersPerVirtualPipelineStage = 0;  // 0: not given
  int64_t decoderFirstPipelineNumLayers = 0;     // 0: not given
  int64_t decoderLastPipelineNumLayers = 0;      // 0: not given

  // Layer choices.
  Normalization normalization = Normalization::LayerNorm;
  double normEpsilon = 1e-5;
  bool swiglu = false;
  bool untieEmbeddingsAndOutputWeights = false;
  bool addBiasLinear = true; // --disable-bias-linear clears it
  PositionEmbedding positionEmbeddingType = PositionEmbedding::LearnedAbsolute;
  double rotaryBase = 10000.0;
  double rotaryPercent = 1.0;
  int64_t relativeAttentionNumBuckets = 32;
  int64_t relativeAttentionMaxDistance = 128;
  double attentionDropout = 0.1;
  double hiddenDropout = 0.1;
  double initMethodStd = 0.02;
  bool bertBinaryHead = true; // --bert-no-binary-head clears it

  // Precision: Megatron's --bf16 / --fp16 (recorded as the module's mt.precision; megatron-opt
  // --mt-mixed-precision applies it).
  bool bf16 = false;
  bool fp16 = false;

  /// Fills every 0 ("derive") field as Megatron-LM's argument validation does. Idempotent.
  void resolveDefaults();

  /// Problems with the configuration, each naming the flags involved; empty when it is usable. Call after
  /// resolveDefaults().
  std::vector<std::string> validate() const;

  // Derived figures (valid after resolveDefaults()).
  int64_t paddedVocabSize() const;
  int64_t numMicroBatches() const { return globalBatchSize / microBatchSize; }
  int64_t queryProjectionSize() const { return kvChannels * numAttentionHeads; }
  int64_t rotaryDim() const;
  /// Layers of the stack whose output projections get the scaled init (Megatron: std / sqrt(2·num_layers)).
  int64_t totalLayers() const { return kind == ModelKind::T5 ? encoderNumLayers + decoderNumLayers : numLayers; }
};

const char *toString(ModelKind kind);
const char *toString(Normalization normalization);
const char *toString(PositionEmbedding type);
std::optional<ModelKind> parseModelKind(const std::string &name);
std::optional<Normalization> parseNormalization(const std::string &name);
std::optional<PositionEmbedding> parsePositionEmbedding(const std::string &name);

/// Presets: gpt2-small/medium/large/xl, gpt3-175b, llama2-7b, bert-base, bert-large, t5-base.
std::optional<ModelConfig> presetConfig(const std::string &name);
std::vector<std::string> presetNames();

/// Megatron-LM's closed-form FLOPs per training iteration (forward and backward, no recomputation) for a GPT,
/// as `num_floating_point_operations` in megatron/training/training.py computes it. Kept as an independent check
/// of the FLOPs that the compiler derives from the IR.
double megatronGptFlopsPerIteration(const ModelConfig &config);

} // namespace megatron

#endif // MEGATRON_MODEL_MODELCONFIG_H
