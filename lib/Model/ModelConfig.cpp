//===- ModelConfig.cpp - Defaults, validation and presets ------------------===//

#include "megatron/Model/ModelConfig.h"

#include <cmath>
#include <sstream>

namespace megatron {

void ModelConfig::resolveDefaults() {
  if (kind == ModelKind::T5) {
    if (encoderNumLayers == 0)
      encoderNumLayers = numLayers;
    if (decoderNumLayers == 0)
      decoderNumLayers = numLayers;
    if (decoderSeqLength == 0)
      decoderSeqLength = seqLength;
  }
  if (ffnHiddenSize == 0)
    // megatron/training/arguments.py: with SwiGLU the FFN keeps the parameter count of a 4h GeLU MLP.
    ffnHiddenSize = swiglu ? (4 * hiddenSize * 2 / 3) / 64 * 64 : 4 * hiddenSize;
  if (kvChannels == 0 && numAttentionHeads > 0 && hiddenSize % numAttentionHeads == 0)
    kvChannels = hiddenSize / numAttentionHeads;
  if (numQueryGroups == 0)
    numQueryGroups = groupQueryAttention ? 1 : numAttentionHeads;
  if (maxPositionEmbeddings == 0)
    maxPositionEmbeddings = kind == ModelKind::T5 ? std::max(seqLength, decoderSeqLength) : seqLength;
  if (globalBatchSize == 0)
    globalBatchSize = microBatchSize;
}

int64_t ModelConfig::paddedVocabSize() const {
  int64_t multiple = makeVocabSizeDivisibleBy * tensorModelParallelSize;
  if (multiple <= 0)
    return vocabSize;
  return (vocabSize + multiple - 1) / multiple * multiple;
}

int64_t ModelConfig::rotaryDim() const {
  return static_cast<int64_t>(static_cast<double>(kvChannels) * rotaryPercent);
}

namespace {
/// Collects messages; each is one line naming the flags involved.
struct Problems {
  std::vector<std::string> list;
  template <typename... Parts> void add(const Parts &...parts) {
    std::ostringstream os;
    (os << ... << parts);
    list.push_back(os.str());
  }
  void positive(int64_t value, const char *flag) {
    if (value <= 0)
      add(flag, " must be positive, got ", value);
  }
  void probability(double value, const char *flag) {
    if (!(value >= 0.0 && value < 1.0))
      add(flag, " must be in [0, 1), got ", value);
  }
};

/// Elements of a tensor with these dimensions, in floating point so that absurd sizes cannot overflow.
double elements(std::initializer_list<int64_t> dims) {
  double n = 1;
  for (int64_t d : dims)
    n *= static_cast<double>(d);
  return n;
}
} // namespace

/// Megatron's checks of a pipeline split (arguments.py): the layers divide over the stages, or the first and last
/// stages' counts leave a number that does; virtual stages divide each stage's layers.
static void checkPipeline(const ModelConfig &c, Problems &p) {
  int64_t stages = c.pipelineModelParallelSize, layers = c.numLayers;
  if (stages <= 1) {
    if (c.virtualPipelineModelParallelSize > 0 || c.numLayersPerVirtualPipelineStage > 0 ||
        c.decoderFirstPipelineNumLayers > 0 || c.decoderLastPipelineNumLayers > 0)
      p.add("the virtual pipeline and first/last-stage layer flags need --pipeline-model-parallel-size above 1");
    return;
  }
  if (c.kind == ModelKind::T5)
    p.add("--pipeline-model-parallel-size: splitting an encoder-decoder (T5) into stages is not supported yet");
  if (c.numLayersPerVirtualPipelineStage > 0 && c.virtualPipelineModelParallelSize > 0)
    p.add("give --num-layers-per-virtual-pipeline-stage or --virtual-pipeline-model-parallel-size, not both");
  bool uneven = c.decoderFirstPipelineNumLayers > 0 || c.decoderLastPipelineNumLayers > 0;
  bool interleaved = c.numLayersPerVirtualPipelineStage > 0 || c.virtualPipelineModelParallelSize > 0;
  if (uneven && interleaved)
    p.add("--decoder-first/last-pipeline-num-layers do not combine with virtual pipeline stages here");
  if (uneven) {
    int64_t fixed = std::max<int64_t>(c.decoderFirstPipelineNumLayers, 0) +
                    std::max<int64_t>(c.decoderLastPipelineNumLayers, 0);
    int64_t open = stages - (c.decoderFirstPipelineNumLayers > 0) - (c.decoderLastPipelineNumLayers > 0);
    int64_t rest = layers - fixed;
    if (rest < open || (open > 0 && rest % open != 0) || (open == 0 && rest != 0))
      p.add("--num-layers (", layers, ") minus the first and last stages' ", fixed, " leave ", rest,
            " layers, which do not split evenly over the other ", open, " pipeline stages");
    return;
  }
  if (layers % stages != 0) {
    p.add("--num-layers (", layers, ") must be divisible by --pipeline-model-parallel-size (", stages,
          "), or give --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers");
    return;
  }
  int64_t perStage = layers / stages;
  if (c.numLayersPerVirtualPipelineStage > 0 && perStage % c.numLayersPerVirtualPipelineStage != 0)
    p.add("the layers per pipeline stage (", perStage,
          ") must be divisible by --num-layers-per-virtual-pipeline-stage (", c.numLayersPerVirtualPipelineStage, ")");
  if (c.virtualPipelineModelParallelSize > 0 && perStage % c.virtualPipelineModelParallelSize != 0)
    p.add("the layers per pipeline stage (", perStage,
          ") must be divisible by --virtual-pipeline-model-parallel-size (", c.virtualPipelineModelParallelSize, ")");
  int64_t virtualStages = 1;
  if (c.virtualPipelineModelParallelSize > 0)
    virtualStages = c.virtualPipelineModelParallelSize;
  else if (c.numLayersPerVirtualPipelineStage > 0)
    virtualStages = perStage / c.numLayersPerVirtualPipelineStage;
  int64_t microBatches = c.globalBatchSize / c.microBatchSize;
  if (virtualStages > 1 && microBatches % stages != 0)
    p.add("the interleaved schedule runs micro-batches in groups of --pipeline-model-parallel-size (", stages,
          "): --global-batch-size / --micro-batch-size (", microBatches, ") must be divisible by it");
}

std::vector<std::string> ModelConfig::validate() const {
  Problems p;
  if (kind == ModelKind::T5) {
    p.positive(encoderNumLayers, "--encoder-num-layers");
    p.positive(decoderNumLayers, "--decoder-num-layers");
    p.positive(decoderSeqLength, "--decoder-seq-length");
  } else {
    p.positive(numLayers, "--num-layers");
  }
  p.positive(hiddenSize, "--hidden-size");
  if (bf16 && fp16)
    p.add("--bf16 and --fp16 exclude each other (Megatron: 'cannot specify both fp16 and bf16')");
  p.positive(numAttentionHeads, "--num-attention-heads");
  p.positive(seqLength, "--seq-length");
  p.positive(microBatchSize, "--micro-batch-size");
  p.positive(globalBatchSize, "--global-batch-size");
  p.positive(makeVocabSizeDivisibleBy, "--make-vocab-size-divisible-by");
  p.positive(tensorModelParallelSize, "--tensor-model-parallel-size");
  p.positive(pipelineModelParallelSize, "--pipeline-model-parallel-size");
  if (swiglu && hiddenSize > 0 && ffnHiddenSize == 0)
    p.add("with --swiglu, Megatron's default --ffn-hidden-size (4*hidden*2/3, rounded down to 64) is 0 for "
          "--hidden-size ",
          hiddenSize, "; give --ffn-hidden-size");
  else if (hiddenSize > 0) // otherwise it was derived from the missing hidden size, which is reported already
    p.positive(ffnHiddenSize, "--ffn-hidden-size");
  if (vocabSize <= 0)
    p.add("the vocabulary size is unknown: give --vocab-size or --vocab-file (got ", vocabSize, ")");
  if (!p.list.empty())
    return p.list; // The checks below divide by these.

  if (kvChannels == 0)
    p.add("--hidden-size (", hiddenSize, ") must be divisible by --num-attention-heads (", numAttentionHeads,
          "), or give --kv-channels");
  else if (kvChannels < 0)
    p.add("--kv-channels must be positive, got ", kvChannels);
  if (!groupQueryAttention && numQueryGroups != numAttentionHeads)
    p.add("--num-query-groups (", numQueryGroups, ") needs --group-query-attention");
  if (numQueryGroups <= 0)
    p.add("--num-query-groups must be positive, got ", numQueryGroups);
  else if (numAttentionHeads % numQueryGroups != 0)
    p.add("--num-attention-heads (", numAttentionHeads, ") must be divisible by --num-query-groups (",
          numQueryGroups, ")");
  if (globalBatchSize % microBatchSize != 0)
    p.add("--global-batch-size (", globalBatchSize, ") must be a multiple of --micro-batch-size (", microBatchSize,
          ")");
  if (swiglu && kind == ModelKind::T5)
    p.add("--swiglu is not supported for T5 here");

  // Megatron's arguments.py and TransformerConfig: what tensor (and sequence) parallelism splits must divide.
  int64_t t = tensorModelParallelSize;
  if (numAttentionHeads % t != 0)
    p.add("--num-attention-heads (", numAttentionHeads, ") must be divisible by --tensor-model-parallel-size (", t,
          ")");
  if (numQueryGroups > 0 && numQueryGroups % t != 0 && t % numQueryGroups != 0)
    p.add("--num-query-groups (", numQueryGroups, ") must divide or be divisible by --tensor-model-parallel-size (",
          t, ")");
  if (ffnHiddenSize % t != 0)
    p.add("--ffn-hidden-size (", ffnHiddenSize, ") must be divisible by --tensor-model-parallel-size (", t, ")");
  if (sequenceParallel && t == 1)
    p.add("--sequence-parallel needs --tensor-model-parallel-size above 1");
  if (sequenceParallel && (seqLength % t != 0 || (kind == ModelKind::T5 && decoderSeqLength % t != 0)))
    p.add("with --sequence-parallel the sequence length (", seqLength, kind == ModelKind::T5 ? ", decoder " : "",
          kind == ModelKind::T5 ? std::to_string(decoderSeqLength) : std::string(),
          ") must be divisible by --tensor-model-parallel-size (", t, ")");

  checkPipeline(*this, p);

  switch (positionEmbeddingType) {
  case PositionEmbedding::LearnedAbsolute: {
    int64_t longest = kind == ModelKind::T5 ? std::max(seqLength, decoderSeqLength) : seqLength;
    if (longest > maxPositionEmbeddings)
      p.add("the sequence length (", longest, ") exceeds --max-position-embeddings (", maxPositionEmbeddings, ")");
    break;
  }
  case PositionEmbedding::Rope:
    if (!(rotaryPercent > 0.0 && rotaryPercent <= 1.0))
      p.add("--rotary-percent must be in (0, 1], got ", rotaryPercent);
    else if (kvChannels > 0 && (rotaryDim() <= 0 || rotaryDim() % 2 != 0))
      p.add("--rotary-percent (", rotaryPercent, ") of the head dimension (", kvChannels,
            ") must give a positive, even number of rotary channels, got ", rotaryDim());
    if (!(rotaryBase > 1.0) || !std::isfinite(rotaryBase))
      p.add("--rotary-base must be greater than 1, got ", rotaryBase);
    break;
  case PositionEmbedding::Relative:
    if (kind != ModelKind::T5)
      p.add("--position-embedding-type relative is T5's relative position bias; use learned_absolute or rope");
    if (relativeAttentionNumBuckets < 4)
      p.add("--relative-attention-num-buckets must be at least 4, got ", relativeAttentionNumBuckets);
    else if (relativeAttentionMaxDistance <= relativeAttentionNumBuckets / 2)
      p.add("--relative-attention-max-distance (", relativeAttentionMaxDistance,
            ") must exceed half of --relative-attention-num-buckets (", relativeAttentionNumBuckets, ")");
    break;
  }

  p.probability(attentionDropout, "--attention-dropout");
  p.probability(hiddenDropout, "--hidden-dropout");
  if (!(initMethodStd > 0.0) || !std::isfinite(initMethodStd))
    p.add("--init-method-std must be positive, got ", initMethodStd);
  if (!(normEpsilon > 0.0) || !std::isfinite(normEpsilon))
    p.add("--norm-epsilon must be positive, got ", normEpsilon);

  // Tensor sizes are 64-bit element counts; refuse shapes whose largest tensors could not be indexed.
  const double limit = 4.0e18;
  int64_t longestSeq = kind == ModelKind::T5 ? std::max(seqLength, decoderSeqLength) : seqLength;
  if (elements({microBatchSize, longestSeq, paddedVocabSize()}) > limit ||
      elements({microBatchSize, longestSeq, ffnHiddenSize, 2}) > limit ||
      elements({microBatchSize, numAttentionHeads, longestSeq, longestSeq}) > limit ||
      elements({hiddenSize, ffnHiddenSize, 2}) > limit || elements({paddedVocabSize(), hiddenSize}) > limit)
    p.add("the model is too large: one of its tensors would exceed 4e18 elements");
  return p.list;
}

//===----------------------------------------------------------------------===//
// Names: one table per enum, Megatron's spelling (case-sensitive)
//===----------------------------------------------------------------------===//

namespace {
template <typename Enum> struct Named {
  Enum value;
  const char *name;
};

constexpr Named<ModelKind> modelKindNames[] = {
    {ModelKind::GPT, "gpt"}, {ModelKind::BERT, "bert"}, {ModelKind::T5, "t5"}};
constexpr Named<Normalization> normalizationNames[] = {{Normalization::LayerNorm, "LayerNorm"},
                                                       {Normalization::RMSNorm, "RMSNorm"}};
constexpr Named<PositionEmbedding> positionEmbeddingNames[] = {{PositionEmbedding::LearnedAbsolute, "learned_absolute"},
                                                               {PositionEmbedding::Rope, "rope"},
                                                               {PositionEmbedding::Relative, "relative"}};

template <typename Enum, size_t N> const char *nameOf(const Named<Enum> (&table)[N], Enum value) {
  for (const Named<Enum> &entry : table)
    if (entry.value == value)
      return entry.name;
  return "?";
}

template <typename Enum, size_t N> std::optional<Enum> valueOf(const Named<Enum> (&table)[N], const std::string &name) {
  for (const Named<Enum> &entry : table)
    if (name == entry.name)
      return entry.value;
  return std::nullopt;
}
} // namespace

const char *toString(ModelKind kind) { return nameOf(modelKindNames, kind); }
const char *toString(Normalization normalization) { return nameOf(normalizationNames, normalization); }
const char *toString(PositionEmbedding type) { return nameOf(positionEmbeddingNames, type); }
std::optional<ModelKind> parseModelKind(const std::string &name) { return valueOf(modelKindNames, name); }
std::optional<Normalization> parseNormalization(const std::string &name) {
  return valueOf(normalizationNames, name);
}
std::optional<PositionEmbedding> parsePositionEmbedding(const std::string &name) {
  return valueOf(positionEmbeddingNames, name);
}

//===----------------------------------------------------------------------===//
// Presets
//===----------------------------------------------------------------------===//

namespace {
ModelConfig gpt2(int64_t layers, int64_t hidden, int64_t heads) {
  ModelConfig c;
  c.kind = ModelKind::GPT;
  c.numLayers = layers;
  c.hiddenSize = hidden;
  c.numAttentionHeads = heads;
  c.seqLength = 1024;
  c.maxPositionEmbeddings = 1024;
  c.vocabSize = 50257;
  return c;
}

ModelConfig bert(int64_t layers, int64_t hidden, int64_t heads) {
  ModelConfig c;
  c.kind = ModelKind::BERT;
  c.numLayers = layers;
  c.hiddenSize = hidden;
  c.numAttentionHeads = heads;
  c.seqLength = 512;
  c.maxPositionEmbeddings = 512;
  c.vocabSize = 30522;
  return c;
}
} // namespace

std::vector<std::string> presetNames() {
  return {"gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b",
          "llama2-7b",  "bert-base",   "bert-large", "t5-base"};
}

std::optional<ModelConfig> presetConfig(const std::string &name) {
  if (name == "gpt2-small")
    return gpt2(12, 768, 12);
  if (name == "gpt2-medium")
    return gpt2(24, 1024, 16);
  if (name == "gpt2-large")
    return gpt2(36, 1280, 20);
  if (name == "gpt2-xl")
    return gpt2(48, 1600, 25);
  if (name == "gpt3-175b") { // Brown et al. 2020, table 2.1
    ModelConfig c = gpt2(96, 12288, 96);
    c.seqLength = c.maxPositionEmbeddings = 2048;
    c.globalBatchSize = 1536;
    return c;
  }
  if (name == "llama2-7b") { // Touvron et al. 2023
    ModelConfig c = gpt2(32, 4096, 32);
    c.ffnHiddenSize = 11008;
    c.seqLength = c.maxPositionEmbeddings = 4096;
    c.vocabSize = 32000;
    c.normalization = Normalization::RMSNorm;
    c.swiglu = true;
    c.positionEmbeddingType = PositionEmbedding::Rope;
    c.untieEmbeddingsAndOutputWeights = true;
    c.addBiasLinear = false;
    c.attentionDropout = c.hiddenDropout = 0.0;
    return c;
  }
  if (name == "bert-base")
    return bert(12, 768, 12);
  if (name == "bert-large")
    return bert(24, 1024, 16);
  if (name == "t5-base") { // Megatron-LM's examples/t5 (220M): BERT-cased vocabulary plus 100 sentinel tokens
    ModelConfig c;
    c.kind = ModelKind::T5;
    c.encoderNumLayers = c.decoderNumLayers = 12;
    c.hiddenSize = 768;
    c.numAttentionHeads = 12;
    c.kvChannels = 64;
    c.ffnHiddenSize = 3072;
    c.seqLength = 512;
    c.decoderSeqLength = 128;
    c.maxPositionEmbeddings = 512;
    c.vocabSize = 28996 + 100;
    return c;
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Megatron-LM's FLOP formula
//===----------------------------------------------------------------------===//

double megatronGptFlopsPerIteration(const ModelConfig &c) {
  double h = static_cast<double>(c.hiddenSize);
  double s = static_cast<double>(c.seqLength);
  double L = static_cast<double>(c.numLayers);
  double qRatio = static_cast<double>(c.queryProjectionSize()) / h;
  double gated = c.swiglu ? 1.5 : 1.0;
  double attention = (1.0 + static_cast<double>(c.numQueryGroups) / c.numAttentionHeads + s / h) * qRatio;
  double mlp = static_cast<double>(c.ffnHiddenSize) / h * gated;
  double logits = static_cast<double>(c.paddedVocabSize()) / (2.0 * L * h);
  return 12.0 * static_cast<double>(c.globalBatchSize) * s * L * h * h * (attention + mlp + logits);
}

} // namespace megatron
