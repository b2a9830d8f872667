//===- BatchSource.h - Where megatron-run's micro-batches come from -*- C++ -*-===//
//
// One interface over the two corpora megatron-run trains on: the built-in synthetic language (GptBatchLoader.h)
// and Megatron's preprocessed .bin/.idx datasets, one or blended (--data-path), sampled as Megatron's GPTDataset
// does (GptDataset.h). A source gives micro-batches by sample index, a function of the index only, so that data
// parallel ranks take their shares and a checkpoint's consumed-sample count resumes it exactly. Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_BATCHSOURCE_H
#define MEGATRON_RUNTIME_DATA_BATCHSOURCE_H

#include "runtime/data/GptBatchLoader.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron::data {

class BatchSource {
public:
  virtual ~BatchSource();
  /// The micro-batch of samples firstSample .. firstSample + microBatchSize - 1.
  virtual GptBatch batch(uint64_t firstSample) const = 0;
  /// The lowest expected loss per token any model can reach, or NaN where it is unknown (real text).
  virtual double floor() const = 0;
  /// One line for the log: what the data is.
  virtual std::string describe() const = 0;
  /// Generation: the token that ends a document, the text of tokens (nullopt where the source cannot decode,
  /// e.g. a dataset without --vocab-file and --merge-file), the vocabulary's size.
  virtual int32_t endOfDocument() const = 0;
  virtual std::optional<std::string> detokenize(const int32_t *tokens, size_t count) const = 0;
  virtual size_t vocabularySize() const = 0;

  /// The next sample of the iteration to come (the consumed samples), which a checkpoint records.
  uint64_t state() const { return next; }
  void restore(uint64_t state) { next = state; }

private:
  uint64_t next = 0;
};

/// A micro-batch of `microBatchSize` rows from samples of seqLength + 1 tokens (`sample(i, row)` writes sample i):
/// tokens are a sample's first seqLength, labels its last, the loss mask 1 everywhere (Megatron without
/// --eod-mask-loss).
template <typename SampleFn>
GptBatch batchOfSamples(int64_t microBatchSize, int64_t seqLength, uint64_t firstSample, SampleFn sample) {
  GptBatch out;
  out.microBatchSize = microBatchSize;
  out.seqLength = seqLength;
  out.firstSample = firstSample;
  out.tokens.resize(static_cast<size_t>(microBatchSize * seqLength));
  out.labels.resize(static_cast<size_t>(microBatchSize * seqLength));
  out.lossMask.assign(static_cast<size_t>(microBatchSize * seqLength), 1.0f);
  std::vector<int32_t> row(static_cast<size_t>(seqLength) + 1);
  for (int64_t i = 0; i < microBatchSize; ++i) {
    sample(firstSample + static_cast<uint64_t>(i), row.data());
    std::copy(row.begin(), row.end() - 1, out.tokens.begin() + i * seqLength);
    std::copy(row.begin() + 1, row.end(), out.labels.begin() + i * seqLength);
  }
  return out;
}

/// The built-in corpus's split.
std::unique_ptr<BatchSource> builtinCorpus(const GptBatchLoaderOptions &options);

/// Megatron's --data-path, --split and tokenizer files for one split.
struct DatasetOptions {
  std::vector<std::string> prefixes;
  std::vector<double> weights; // one per prefix, or empty for a single prefix
  std::string split = "969, 30, 1";
  Split which = Split::Train;
  int64_t seqLength = 0;
  int64_t microBatchSize = 1;
  uint64_t seed = 1234;
  int64_t samples = 0; // how many samples the run draws from this split
  std::string vocabFile, mergeFile; // GPT-2's, to decode generated text (optional)
  /// Where the indices are cached: Megatron's --data-cache-path; empty: <prefix's directory>/cache/
  /// GPTDataset_indices, as Megatron; "none": no cache.
  std::string cachePath;
};

/// The split of one dataset, or the blend of several (Megatron's weights, normalized; each dataset sized to its
/// share of `samples` plus Megatron's 0.5% margin). Null and `error` naming the prefix or flag on bad input.
std::unique_ptr<BatchSource> indexedCorpus(const DatasetOptions &options, std::string &error);

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_BATCHSOURCE_H
