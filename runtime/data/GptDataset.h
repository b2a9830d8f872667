//===- GptDataset.h - A split of an indexed dataset, sampled as Megatron -*- C++ -*-===//
//
// Megatron-Core's GPTDataset over one IndexedDataset (.bin/.idx): the split's sequences, the indices of
// GptSampling.h, and sample i's sequence length + 1 tokens read in place from the mapped .bin
// (_query_document_sample_shuffle_indices): the sample's start and end in the document index, the tokens of the
// sequences between them. A last partial sample (validation) is padded. Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_GPTDATASET_H
#define MEGATRON_RUNTIME_DATA_GPTDATASET_H

#include "runtime/data/GptSampling.h"
#include "runtime/data/IndexedDataset.h"

#include <memory>

namespace megatron::data {

class GptDataset {
public:
  /// Split `which` (0 train, 1 validation, 2 test) of `dataset` by `split` (parseSplit). Fails (null, `error`
  /// naming the dataset) on an empty split or one too short for a sample.
  /// With a `cacheDirectory`, the indices are read from there when a previous run saved the same ones, and
  /// saved there otherwise (IndexCache.h); an unwritable directory only costs the saving.
  static std::unique_ptr<GptDataset> build(std::shared_ptr<const IndexedDataset> dataset,
                                           const std::vector<double> &split, int which,
                                           const GptIndexOptions &options, std::string &error,
                                           const std::string &cacheDirectory = "");

  /// The samples of the split (over the epochs the options asked for).
  int64_t size() const { return indices.numSamples(); }
  int64_t sequenceLength() const { return options.sequenceLength; }
  const GptIndices &gptIndices() const { return indices; }
  /// What became of the index cache: "read from DIR", "saved to DIR", "not saved: WHY", or empty without one.
  const std::string &cacheNote() const { return cache; }

  /// Sample i's sequenceLength + addExtraTokenToSequence tokens into `tokens`; positions past a short last
  /// sample get `pad`. Returns how many tokens came from the data.
  int64_t sample(int64_t i, int32_t *tokens, int32_t pad = 0) const;

private:
  GptDataset() = default;
  std::shared_ptr<const IndexedDataset> dataset;
  GptIndexOptions options;
  GptIndices indices;
  std::string cache;
};

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_GPTDATASET_H
