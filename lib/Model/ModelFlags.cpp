//===- ModelFlags.cpp - Megatron-LM's model flags on the command line ------===//

#include "megatron/Model/ModelFlags.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

namespace cl = llvm::cl;

namespace megatron {

namespace {
cl::OptionCategory modelCategory("Model (Megatron-LM's flag names)");

template <typename T> using Opt = cl::opt<T>;

std::string join(const std::vector<std::string> &names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? ", " : "") + names[i];
  return out;
}
} // namespace

struct ModelFlags::Options {
  Opt<std::string> model{"model", cl::desc("Model family: gpt, bert or t5 (default gpt, or the preset's)"),
                         cl::value_desc("family"), cl::cat(modelCategory)};
  Opt<std::string> preset{"preset", cl::desc("Start from a named shape; explicit flags override it. One of: " +
                                             join(presetNames())),
                          cl::value_desc("name"), cl::cat(modelCategory)};
  Opt<int64_t> numLayers{"num-layers", cl::desc("Transformer layers (T5: of encoder and decoder alike)"),
                         cl::cat(modelCategory)};
  Opt<int64_t> encoderNumLayers{"encoder-num-layers", cl::desc("T5 encoder layers"), cl::cat(modelCategory)};
  Opt<int64_t> decoderNumLayers{"decoder-num-layers", cl::desc("T5 decoder layers"), cl::cat(modelCategory)};
  Opt<int64_t> hiddenSize{"hidden-size", cl::desc("Hidden size"), cl::cat(modelCategory)};
  Opt<int64_t> ffnHiddenSize{"ffn-hidden-size", cl::desc("MLP hidden size (default 4*hidden; with --swiglu "
                                                         "2/3 of that, rounded down to 64)"),
                             cl::cat(modelCategory)};
  Opt<int64_t> numAttentionHeads{"num-attention-heads", cl::desc("Attention heads"), cl::cat(modelCategory)};
  Opt<int64_t> kvChannels{"kv-channels", cl::desc("Head dimension (default hidden / heads)"), cl::cat(modelCategory)};
  Opt<bool> groupQueryAttention{"group-query-attention", cl::desc("Share key/value heads between query heads"),
                                cl::cat(modelCategory)};
  Opt<int64_t> numQueryGroups{"num-query-groups", cl::desc("Key/value heads with --group-query-attention "
                                                           "(default 1)"),
                              cl::cat(modelCategory)};
  Opt<int64_t> seqLength{"seq-length", cl::desc("Sequence length (T5: the encoder's)"), cl::cat(modelCategory)};
  Opt<int64_t> encoderSeqLength{"encoder-seq-length", cl::desc("Alias of --seq-length"), cl::cat(modelCategory)};
  Opt<int64_t> decoderSeqLength{"decoder-seq-length", cl::desc("T5 decoder sequence length"),
                                cl::cat(modelCategory)};
  Opt<int64_t> maxPositionEmbeddings{"max-position-embeddings", cl::desc("Learned positions (default seq length)"),
                                     cl::cat(modelCategory)};
  Opt<int64_t> microBatchSize{"micro-batch-size", cl::desc("Sequences per micro-batch (default 1)"),
                              cl::cat(modelCategory)};
  Opt<int64_t> globalBatchSize{"global-batch-size", cl::desc("Sequences per iteration (default the micro-batch "
                                                             "size)"),
                               cl::cat(modelCategory)};
  Opt<int64_t> vocabSize{"vocab-size", cl::desc("Vocabulary size before padding"), cl::cat(modelCategory)};
  Opt<std::string> vocabFile{"vocab-file", cl::desc("Vocabulary file (vocab.json or vocab.txt) to take the size "
                                                    "from"),
                             cl::value_desc("path"), cl::cat(modelCategory)};
  Opt<int64_t> makeVocabSizeDivisibleBy{"make-vocab-size-divisible-by",
                                        cl::desc("Pad the vocabulary to a multiple of this (default 128)"),
                                        cl::cat(modelCategory)};
  Opt<int64_t> tensorModelParallelSize{"tensor-model-parallel-size",
                                       cl::desc("The tensor-parallel size the model will be sharded to (pads the "
                                                "vocabulary for it and checks that the model splits)"),
                                       cl::cat(modelCategory)};
  Opt<bool> sequenceParallel{"sequence-parallel", cl::desc("Check the model for sequence parallelism"),
                             cl::cat(modelCategory)};
  Opt<int64_t> pipelineModelParallelSize{"pipeline-model-parallel-size",
                                         cl::desc("The pipeline stages the model will be split into (checks that "
                                                  "its layers split; the split is megatron-opt --mt-pipeline's)"),
                                         cl::cat(modelCategory)};
  Opt<int64_t> virtualPipelineModelParallelSize{"virtual-pipeline-model-parallel-size",
                                                cl::desc("Model chunks per pipeline stage (interleaved 1F1B)"),
                                                cl::cat(modelCategory)};
  Opt<int64_t> numLayersPerVirtualPipelineStage{"num-layers-per-virtual-pipeline-stage",
                                                cl::desc("Layers per model chunk (interleaved 1F1B)"),
                                                cl::cat(modelCategory)};
  Opt<int64_t> decoderFirstPipelineNumLayers{"decoder-first-pipeline-num-layers",
                                             cl::desc("Layers on the first pipeline stage"), cl::cat(modelCategory)};
  Opt<int64_t> decoderLastPipelineNumLayers{"decoder-last-pipeline-num-layers",
                                            cl::desc("Layers on the last pipeline stage"), cl::cat(modelCategory)};
  Opt<std::string> normalization{"normalization", cl::desc("LayerNorm or RMSNorm (default LayerNorm)"),
                                 cl::cat(modelCategory)};
  Opt<double> normEpsilon{"norm-epsilon", cl::desc("Epsilon of the norms (default 1e-5)"), cl::cat(modelCategory)};
  Opt<bool> swiglu{"swiglu", cl::desc("SwiGLU MLP instead of GeLU"), cl::cat(modelCategory)};
  Opt<bool> untieEmbeddings{"untie-embeddings-and-output-weights",
                            cl::desc("Give the output layer its own weight"), cl::cat(modelCategory)};
  Opt<bool> bf16{"bf16", cl::desc("Compute in bf16 with f32 master weights (megatron-opt --mt-mixed-precision)"),
                 cl::cat(modelCategory)};
  Opt<bool> fp16{"fp16", cl::desc("Compute in fp16 with f32 master weights and loss scaling"),
                 cl::cat(modelCategory)};
  Opt<bool> disableBiasLinear{"disable-bias-linear", cl::desc("No biases in linear layers"), cl::cat(modelCategory)};
  Opt<std::string> positionEmbeddingType{"position-embedding-type",
                                         cl::desc("learned_absolute, rope, or relative (T5) (default "
                                                  "learned_absolute)"),
                                         cl::cat(modelCategory)};
  Opt<double> rotaryBase{"rotary-base", cl::desc("RoPE base (default 10000)"), cl::cat(modelCategory)};
  Opt<double> rotaryPercent{"rotary-percent", cl::desc("Fraction of head channels RoPE rotates (default 1.0)"),
                            cl::cat(modelCategory)};
  Opt<int64_t> relativeBuckets{"relative-attention-num-buckets", cl::desc("T5 relative buckets (default 32)"),
                               cl::cat(modelCategory)};
  Opt<int64_t> relativeMaxDistance{"relative-attention-max-distance",
                                   cl::desc("T5 relative max distance (default 128)"), cl::cat(modelCategory)};
  Opt<double> attentionDropout{"attention-dropout", cl::desc("Attention dropout (default 0.1)"),
                               cl::cat(modelCategory)};
  Opt<double> hiddenDropout{"hidden-dropout", cl::desc("Hidden dropout (default 0.1)"), cl::cat(modelCategory)};
  Opt<double> initMethodStd{"init-method-std", cl::desc("Std of the normal init (default 0.02)"),
                            cl::cat(modelCategory)};
  Opt<bool> bertNoBinaryHead{"bert-no-binary-head", cl::desc("BERT without the sentence-order head"),
                             cl::cat(modelCategory)};
};

ModelFlags::ModelFlags() : options(std::make_unique<Options>()) {}
ModelFlags::~ModelFlags() = default;

std::optional<int64_t> readVocabSize(const std::string &path, std::string &error) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer) {
    error = "--vocab-file: cannot read '" + path + "': " + buffer.getError().message();
    return std::nullopt;
  }
  llvm::StringRef text = (*buffer)->getBuffer();
  if (text.ltrim().starts_with("{")) {
    llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
    if (!json) {
      error = "--vocab-file: '" + path + "' is not valid JSON: " + llvm::toString(json.takeError());
      return std::nullopt;
    }
    const llvm::json::Object *object = json->getAsObject();
    if (!object || object->empty()) {
      error = "--vocab-file: '" + path + "' has no tokens";
      return std::nullopt;
    }
    return static_cast<int64_t>(object->size());
  }
  int64_t lines = 0;
  llvm::SmallVector<llvm::StringRef> all;
  text.split(all, '\n');
  for (llvm::StringRef line : all)
    lines += !line.trim().empty();
  if (lines == 0) {
    error = "--vocab-file: '" + path + "' has no tokens";
    return std::nullopt;
  }
  return lines;
}

std::optional<ModelConfig> ModelFlags::resolve(std::vector<std::string> &errors) const {
  const Options &o = *options;
  size_t errorsBefore = errors.size();
  ModelConfig c;

  if (o.preset.getNumOccurrences()) {
    std::optional<ModelConfig> preset = presetConfig(o.preset);
    if (!preset) {
      errors.push_back("--preset: unknown preset '" + o.preset + "'; expected one of " + join(presetNames()));
      return std::nullopt;
    }
    c = *preset;
  }
  if (o.model.getNumOccurrences()) {
    std::optional<ModelKind> kind = parseModelKind(o.model);
    if (!kind)
      errors.push_back("--model: unknown model family '" + o.model + "'; expected gpt, bert or t5");
    else if (o.preset.getNumOccurrences() && *kind != c.kind)
      errors.push_back("--model " + o.model + " contradicts --preset " + o.preset + ", which is a " +
                       toString(c.kind) + " model");
    else
      c.kind = *kind;
  }

  // Every flag given explicitly overrides the preset.
  auto set = [](const auto &opt, auto &field) {
    if (opt.getNumOccurrences())
      field = opt;
  };
  set(o.numLayers, c.numLayers);
  set(o.encoderNumLayers, c.encoderNumLayers);
  set(o.decoderNumLayers, c.decoderNumLayers);
  set(o.hiddenSize, c.hiddenSize);
  set(o.ffnHiddenSize, c.ffnHiddenSize);
  set(o.numAttentionHeads, c.numAttentionHeads);
  set(o.kvChannels, c.kvChannels);
  set(o.groupQueryAttention, c.groupQueryAttention);
  set(o.numQueryGroups, c.numQueryGroups);
  set(o.seqLength, c.seqLength);
  set(o.encoderSeqLength, c.seqLength);
  set(o.decoderSeqLength, c.decoderSeqLength);
  set(o.maxPositionEmbeddings, c.maxPositionEmbeddings);
  set(o.microBatchSize, c.microBatchSize);
  set(o.globalBatchSize, c.globalBatchSize);
  set(o.vocabSize, c.vocabSize);
  set(o.makeVocabSizeDivisibleBy, c.makeVocabSizeDivisibleBy);
  set(o.tensorModelParallelSize, c.tensorModelParallelSize);
  set(o.sequenceParallel, c.sequenceParallel);
  set(o.pipelineModelParallelSize, c.pipelineModelParallelSize);
  set(o.virtualPipelineModelParallelSize, c.virtualPipelineModelParallelSize);
  set(o.numLayersPerVirtualPipelineStage, c.numLayersPerVirtualPipelineStage);
  set(o.decoderFirstPipelineNumLayers, c.decoderFirstPipelineNumLayers);
  set(o.decoderLastPipelineNumLayers, c.decoderLastPipelineNumLayers);
  set(o.normEpsilon, c.normEpsilon);
  set(o.swiglu, c.swiglu);
  set(o.untieEmbeddings, c.untieEmbeddingsAndOutputWeights);
  set(o.bf16, c.bf16);
  set(o.fp16, c.fp16);
  set(o.rotaryBase, c.rotaryBase);
  set(o.rotaryPercent, c.rotaryPercent);
  set(o.relativeBuckets, c.relativeAttentionNumBuckets);
  set(o.relativeMaxDistance, c.relativeAttentionMaxDistance);
  set(o.attentionDropout, c.attentionDropout);
  set(o.hiddenDropout, c.hiddenDropout);
  set(o.initMethodStd, c.initMethodStd);
  if (o.disableBiasLinear.getNumOccurrences())
    c.addBiasLinear = !o.disableBiasLinear;
  if (o.bertNoBinaryHead.getNumOccurrences())
    c.bertBinaryHead = !o.bertNoBinaryHead;

  if (o.normalization.getNumOccurrences()) {
    if (auto n = parseNormalization(o.normalization))
      c.normalization = *n;
    else
      errors.push_back("--normalization: unknown value '" + o.normalization + "'; expected LayerNorm or RMSNorm");
  }
  if (o.positionEmbeddingType.getNumOccurrences()) {
    if (auto p = parsePositionEmbedding(o.positionEmbeddingType))
      c.positionEmbeddingType = *p;
    else
      errors.push_back("--position-embedding-type: unknown value '" + o.positionEmbeddingType +
                       "'; expected learned_absolute, rope or relative");
  }
  if (o.vocabFile.getNumOccurrences()) {
    if (o.vocabSize.getNumOccurrences())
      errors.push_back("give either --vocab-size or --vocab-file, not both");
    std::string error;
    if (std::optional<int64_t> size = readVocabSize(o.vocabFile, error))
      c.vocabSize = *size;
    else
      errors.push_back(error);
  }
  if (errors.size() != errorsBefore)
    return std::nullopt;

  c.resolveDefaults();
  std::vector<std::string> problems = c.validate();
  if (!problems.empty()) {
    errors.insert(errors.end(), problems.begin(), problems.end());
    return std::nullopt;
  }
  return c;
}

} // namespace megatron
