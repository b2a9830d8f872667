//===- GptSampling.h - Megatron's GPT dataset indices and blending -*- C++ -*-===//
//
// How Megatron-Core's GPTDataset turns tokenized documents into training samples, so that a corpus that Megatron
// preprocessed yields here the very samples, in the very order, that Megatron-LM trains on:
//   - the split of the documents (--split 969,30,1) into train, validation and test ranges;
//   - the document index: the split's documents repeated over the epochs the run needs and shuffled with
//     numpy.random.RandomState(seed) (the last epoch shuffled apart when it is short);
//   - the sample index: where each sample of sequence-length + 1 tokens starts (document, offset), samples
//     spanning documents;
//   - the shuffle index: a permutation of the samples, from the same random state;
//   - blending (--data-path 0.3 a 0.7 b): which dataset each blended sample comes from, by largest error.
// numpy's RandomState is reproduced exactly (MT19937 with numpy's legacy seeding and bounded-integer draws), so
// the indices equal Megatron's bit for bit (test/unit/data/GptSamplingTest.cpp checks against numpy itself).
// Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_GPTSAMPLING_H
#define MEGATRON_RUNTIME_DATA_GPTSAMPLING_H

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace megatron::data {

/// numpy.random.RandomState(seed) for the calls Megatron makes: shuffle of a 1-D array. numpy seeds its legacy
/// MT19937 with init_genrand(seed) (std::mt19937's seeding) and draws a bounded integer in [0, max] by masking
/// 32-bit (or, above 2^32 - 1, two-word 64-bit) outputs to the smallest covering power of two and rejecting.
class NumpyRandomState {
public:
  explicit NumpyRandomState(uint32_t seed) : generator(seed) {}
  /// numpy's random_interval(max): uniform in [0, max].
  uint64_t interval(uint64_t max);
  /// numpy's RandomState.shuffle of a 1-D array: Fisher-Yates from the end.
  template <typename T> void shuffle(std::vector<T> &values) {
    for (size_t i = values.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(interval(i - 1));
      std::swap(values[i - 1], values[j]);
    }
  }

private:
  std::mt19937 generator;
};

/// --split "969,30,1" (any number of parts up to three, missing ones 0; as Megatron: the numbers in the text,
/// normalized to sum 1). Empty and `error` set when a part is not a non-negative number or all are zero.
std::vector<double> parseSplit(const std::string &text, std::string &error);

/// The documents [begin, end) of split `which` (0 train, 1 validation, 2 test) of `numDocuments`, as Megatron
/// rounds the cumulative fractions (Python's round: half to even). An empty range for a zero part.
std::pair<int64_t, int64_t> splitRange(const std::vector<double> &split, int which, int64_t numDocuments);

/// A GPTDataset's three indices.
struct GptIndices {
  std::vector<int32_t> document;  // the documents, epoch after epoch, shuffled
  std::vector<int64_t> sample;    // 2 x (samples + 1): (position in `document`, token offset) of each start
  std::vector<int64_t> shuffle;   // a permutation of [0, samples)
  int64_t numSamples() const { return static_cast<int64_t>(sample.size() / 2) - 1; }
};

struct GptIndexOptions {
  int64_t sequenceLength = 0;
  uint32_t seed = 1234;
  /// Samples wanted (train_iters × global batch for the train split); 0: one epoch's worth.
  int64_t numSamples = 0;
  /// Megatron keeps the last partial sample of the validation split unless told otherwise; train drops it.
  bool dropLastPartialSequence = true;
  int addExtraTokenToSequence = 1; // the label of the last position
};

/// Builds the indices over `documents` (ids into `sequenceLengths`, the tokens of every document) as Megatron's
/// GPTDataset does. Fails (empty result, `error`) when the documents hold fewer tokens than one sample needs.
std::optional<GptIndices> buildGptIndices(const std::vector<int32_t> &sequenceLengths,
                                          const std::vector<int32_t> &documents, const GptIndexOptions &options,
                                          std::string &error);

/// Megatron's blending (helpers.cpp build_blending_indices): for each of `size` samples, the dataset whose count
/// lags its weight the most (first on ties), and the index of that dataset's sample.
void buildBlendingIndices(const std::vector<double> &weights, int64_t size, std::vector<int16_t> &datasetIndex,
                          std::vector<int64_t> &datasetSampleIndex);

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_GPTSAMPLING_H
