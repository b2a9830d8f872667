//===- BatchSource.cpp - The built-in corpus and Megatron's datasets as batch sources ===//

#include "runtime/data/BatchSource.h"

#include "megatron/Tokenizer/Gpt2Bpe.h"
#include "runtime/data/GptDataset.h"

#include <cmath>
#include <filesystem>
#include <limits>

namespace megatron::data {

BatchSource::~BatchSource() = default;

namespace {

class BuiltinCorpus final : public BatchSource {
public:
  explicit BuiltinCorpus(const GptBatchLoaderOptions &options) : loader(options) {}
  GptBatch batch(uint64_t firstSample) const override { return loader.batch(firstSample); }
  double floor() const override { return loader.floor(); }
  std::string describe() const override {
    char text[160];
    std::snprintf(text, sizeof text,
                  "built-in synthetic language, vocabulary %zu, entropy floor %.4f nats/token for this sequence "
                  "length",
                  size_t(loader.language().vocabulary().size()), loader.floor());
    return text;
  }
  int32_t endOfDocument() const override { return loader.language().endOfDocument(); }
  std::optional<std::string> detokenize(const int32_t *tokens, size_t count) const override {
    return loader.language().vocabulary().detokenize(tokens, count);
  }
  size_t vocabularySize() const override { return loader.language().vocabulary().size(); }

private:
  GptBatchLoader loader;
};

/// Megatron's blend of GPT datasets over one split (BlendedDataset over GPTDatasets).
class IndexedCorpus final : public BatchSource {
public:
  GptBatch batch(uint64_t firstSample) const override {
    return batchOfSamples(options.microBatchSize, options.seqLength, firstSample, [this](uint64_t i, int32_t *row) {
      // A run never draws more than the samples it sized the split for; past them it wraps around.
      uint64_t at = i % static_cast<uint64_t>(size);
      if (datasets.size() == 1)
        datasets[0]->sample(static_cast<int64_t>(at), row, pad);
      else
        datasets[static_cast<size_t>(datasetIndex[at])]->sample(datasetSampleIndex[at], row, pad);
    });
  }
  double floor() const override { return std::numeric_limits<double>::quiet_NaN(); }
  std::string describe() const override { return description; }
  int32_t endOfDocument() const override { return tokenizer ? tokenizer->endOfText() : 0; }
  std::optional<std::string> detokenize(const int32_t *tokens, size_t count) const override {
    if (!tokenizer)
      return std::nullopt;
    return tokenizer->decode(tokens, count);
  }
  size_t vocabularySize() const override { return tokenizer ? tokenizer->vocabSize() : 0; }

  DatasetOptions options;
  std::vector<std::unique_ptr<GptDataset>> datasets;
  std::vector<int16_t> datasetIndex;
  std::vector<int64_t> datasetSampleIndex;
  int64_t size = 0;
  int32_t pad = 0;
  std::unique_ptr<tokenizer::Gpt2Bpe> tokenizer;
  std::string description;
};

} // namespace

std::unique_ptr<BatchSource> builtinCorpus(const GptBatchLoaderOptions &options) {
  return std::make_unique<BuiltinCorpus>(options);
}

std::unique_ptr<BatchSource> indexedCorpus(const DatasetOptions &options, std::string &error) {
  auto corpus = std::make_unique<IndexedCorpus>();
  corpus->options = options;
  if (options.prefixes.empty() || (!options.weights.empty() && options.weights.size() != options.prefixes.size())) {
    error = "--data-path: give one prefix, or weight and prefix pairs";
    return nullptr;
  }
  std::vector<double> split = parseSplit(options.split, error);
  if (split.empty())
    return nullptr;
  if (!options.vocabFile.empty() || !options.mergeFile.empty()) {
    if (options.vocabFile.empty() || options.mergeFile.empty()) {
      error = "--vocab-file and --merge-file go together";
      return nullptr;
    }
    corpus->tokenizer = tokenizer::Gpt2Bpe::load(options.vocabFile, options.mergeFile, error);
    if (!corpus->tokenizer)
      return nullptr;
  }
  // Megatron's weights are normalized; each dataset is sized to its share plus a 0.5% margin, so that the blend's
  // greedy order never runs one dry.
  std::vector<double> weights = options.weights.empty() ? std::vector<double>{1.0} : options.weights;
  double total = 0;
  for (double w : weights) {
    if (!(w > 0) || !std::isfinite(w)) {
      error = "--data-path: weight " + std::to_string(w) + " must be positive";
      return nullptr;
    }
    total += w;
  }
  for (double &w : weights)
    w /= total;
  const int64_t samples = std::max<int64_t>(options.samples, 1);
  int64_t sequences = 0;
  std::string cacheNotes;
  for (size_t d = 0; d < options.prefixes.size(); ++d) {
    std::shared_ptr<const IndexedDataset> data = IndexedDataset::open(options.prefixes[d], error);
    if (!data)
      return nullptr;
    sequences += static_cast<int64_t>(data->sequenceCount());
    GptIndexOptions index;
    index.sequenceLength = options.seqLength;
    index.seed = static_cast<uint32_t>(options.seed);
    index.numSamples = options.weights.empty()
                           ? samples
                           : static_cast<int64_t>(std::ceil(std::ceil(samples * weights[d]) * 1.005));
    index.dropLastPartialSequence = options.which == Split::Train;
    std::string cache = options.cachePath;
    if (cache.empty())
      cache = (std::filesystem::path(options.prefixes[d]).parent_path() / "cache" / "GPTDataset_indices").string();
    std::unique_ptr<GptDataset> dataset = GptDataset::build(std::move(data), split, static_cast<int>(options.which),
                                                            index, error, cache == "none" ? "" : cache);
    if (!dataset)
      return nullptr;
    if (!dataset->cacheNote().empty())
      cacheNotes += (cacheNotes.empty() ? "" : "; ") + dataset->cacheNote();
    corpus->datasets.push_back(std::move(dataset));
  }
  if (corpus->datasets.size() == 1) {
    corpus->size = corpus->datasets[0]->size();
  } else {
    corpus->size = samples;
    buildBlendingIndices(weights, samples, corpus->datasetIndex, corpus->datasetSampleIndex);
  }
  corpus->pad = corpus->endOfDocument();
  corpus->description = std::to_string(options.prefixes.size()) + " Megatron dataset" +
                        (options.prefixes.size() == 1 ? " (" + options.prefixes[0] + ")" : "s, blended") + ", " +
                        std::to_string(sequences) + " sequences, split " + options.split + ": " +
                        std::to_string(corpus->size) + " " + toString(options.which) + " samples" +
                        (cacheNotes.empty() ? "" : " (indices " + cacheNotes + ")");
  return corpus;
}

} // namespace megatron::data
