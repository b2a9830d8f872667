//===- GptSampling.cpp - Megatron's GPT dataset indices and blending -------===//
//
// Follows megatron/core/datasets/gpt_dataset.py (_build_document_sample_shuffle_indices), helpers.cpp
// (build_sample_idx, build_blending_indices) and blended_megatron_dataset_config.py (the split), step for step:
// the point is to produce their indices exactly, so the order of the random draws matters as much as the values.
//
//===----------------------------------------------------------------------===//

#include "GptSampling.h"

#include <cmath>
#include <numeric>

namespace megatron::data {

uint64_t NumpyRandomState::interval(uint64_t max) {
  if (max == 0)
    return 0;
  uint64_t mask = max;
  for (int shift : {1, 2, 4, 8, 16, 32})
    mask |= mask >> shift;
  uint64_t value;
  if (max <= 0xffffffffull) {
    do
      value = static_cast<uint64_t>(generator()) & mask;
    while (value > max);
  } else {
    do {
      uint64_t high = generator();
      value = ((high << 32) | static_cast<uint64_t>(generator())) & mask;
    } while (value > max);
  }
  return value;
}

std::vector<double> parseSplit(const std::string &text, std::string &error) {
  // As re.findall(r"[.0-9]+", split): every run of digits and dots is one number.
  std::vector<double> parts;
  for (size_t i = 0; i < text.size();) {
    if (!(text[i] == '.' || (text[i] >= '0' && text[i] <= '9'))) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && (text[end] == '.' || (text[end] >= '0' && text[end] <= '9')))
      ++end;
    std::string number = text.substr(i, end - i);
    char *stop = nullptr;
    double value = std::strtod(number.c_str(), &stop);
    if (number == "." || stop != number.c_str() + number.size()) {
      error = "--split '" + text + "': '" + number + "' is not a number";
      return {};
    }
    parts.push_back(value);
    i = end;
  }
  if (parts.empty() || parts.size() > 3) {
    error = "--split '" + text + "' must give 1 to 3 weights (train, validation, test), e.g. 969,30,1";
    return {};
  }
  parts.resize(3, 0.0);
  double sum = parts[0] + parts[1] + parts[2];
  if (!(sum > 0)) {
    error = "--split '" + text + "' has no positive weight";
    return {};
  }
  for (double &part : parts)
    part /= sum;
  return parts;
}

std::pair<int64_t, int64_t> splitRange(const std::vector<double> &split, int which, int64_t numDocuments) {
  // Book-ends [0, a, a + b, a + b + c], summed in this order; a split of zero width is None in Megatron.
  double begin = 0.0;
  for (int i = 0; i < which; ++i)
    begin += split[static_cast<size_t>(i)];
  double end = begin + split[static_cast<size_t>(which)];
  if (end <= begin)
    return {0, 0};
  // int(round(x * n)): Python rounds half to even, as nearbyint does in the default rounding mode.
  auto at = [&](double fraction) {
    return static_cast<int64_t>(std::nearbyint(fraction * static_cast<double>(numDocuments)));
  };
  return {at(begin), at(end)};
}

namespace {

/// The documents over `epochs` epochs, shuffled (gpt_dataset.py's _build_document_index).
std::vector<int32_t> documentIndex(const std::vector<int32_t> &documents, int64_t epochs, bool separateFinalEpoch,
                                   NumpyRandomState &random) {
  if (!separateFinalEpoch || epochs == 1) {
    std::vector<int32_t> index;
    index.reserve(documents.size() * static_cast<size_t>(epochs));
    for (int64_t e = 0; e < epochs; ++e)
      index.insert(index.end(), documents.begin(), documents.end());
    random.shuffle(index);
    return index;
  }
  std::vector<int32_t> first = documentIndex(documents, epochs - 1, false, random);
  std::vector<int32_t> last = documentIndex(documents, 1, false, random);
  first.insert(first.end(), last.begin(), last.end());
  return first;
}

/// helpers.cpp's build_sample_idx: the (document index position, offset) where each sample starts, and where the
/// last one ends.
std::vector<int64_t> sampleIndex(const std::vector<int32_t> &sizes, const std::vector<int32_t> &documents,
                                 int64_t sequenceLength, int64_t epochs, int64_t tokensPerEpoch,
                                 bool dropLastPartialSequence, int64_t extra) {
  int64_t numSamples =
      dropLastPartialSequence
          ? (epochs * tokensPerEpoch - extra) / sequenceLength
          : static_cast<int64_t>(std::ceil(static_cast<float>(epochs * tokensPerEpoch - extra) / sequenceLength));
  std::vector<int64_t> index(static_cast<size_t>(2 * (numSamples + 1)));
  int64_t position = 0, offset = 0, written = 0;
  index[0] = position;
  index[1] = offset;
  ++written;
  while (written <= numSamples) {
    int64_t remaining = sequenceLength + extra;
    while (remaining != 0) {
      int64_t length = sizes[static_cast<size_t>(documents[static_cast<size_t>(position)])] - offset;
      remaining -= length;
      if (remaining <= 0) {
        offset += remaining + length - extra;
        remaining = 0;
      } else {
        if (position == static_cast<int64_t>(documents.size()) - 1) {
          // The documents are used up: the last, partial sample ends here.
          offset = sizes[static_cast<size_t>(documents[static_cast<size_t>(position)])] - extra;
          break;
        }
        ++position;
        offset = 0;
      }
    }
    index[static_cast<size_t>(2 * written)] = position;
    index[static_cast<size_t>(2 * written + 1)] = offset;
    ++written;
  }
  return index;
}

/// gpt_dataset.py's _build_shuffle_index: [0, first) shuffled, then [first, total) shuffled apart.
std::vector<int64_t> shuffleIndex(int64_t first, int64_t total, NumpyRandomState &random) {
  std::vector<int64_t> head(static_cast<size_t>(first));
  std::iota(head.begin(), head.end(), int64_t(0));
  random.shuffle(head);
  if (first == total)
    return head;
  std::vector<int64_t> tail(static_cast<size_t>(total - first));
  std::iota(tail.begin(), tail.end(), first);
  random.shuffle(tail);
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

} // namespace

std::optional<GptIndices> buildGptIndices(const std::vector<int32_t> &sequenceLengths,
                                          const std::vector<int32_t> &documents, const GptIndexOptions &options,
                                          std::string &error) {
  const int64_t length = options.sequenceLength, extra = options.addExtraTokenToSequence;
  int64_t tokensPerEpoch = 0;
  for (int32_t document : documents) {
    if (document < 0 || static_cast<size_t>(document) >= sequenceLengths.size()) {
      error = "document " + std::to_string(document) + " is not one of the dataset's " +
              std::to_string(sequenceLengths.size());
      return std::nullopt;
    }
    tokensPerEpoch += sequenceLengths[static_cast<size_t>(document)];
  }
  if (length < 2 || tokensPerEpoch < length + extra) {
    error = "the split's " + std::to_string(documents.size()) + " documents hold " + std::to_string(tokensPerEpoch) +
            " tokens, fewer than one sample of " + std::to_string(length + extra) + " needs";
    return std::nullopt;
  }
  // Epochs: enough for the samples asked for (_get_num_epochs).
  int64_t epochs = 1;
  if (options.numSamples > 0)
    for (int64_t tokens = tokensPerEpoch; tokens < options.numSamples * length + extra; tokens += tokensPerEpoch)
      ++epochs;
  // A short last epoch (under 80% of an epoch's samples) is shuffled apart, so that its documents are not
  // over-represented early in the run.
  bool separateFinalEpoch = false;
  int64_t samplesBeforeFinalEpoch = 0;
  if (epochs > 1) {
    samplesBeforeFinalEpoch = ((epochs - 1) * tokensPerEpoch - extra) / length;
    int64_t fromFinalEpoch = options.numSamples - samplesBeforeFinalEpoch;
    int64_t perEpoch = (tokensPerEpoch - extra) / length;
    separateFinalEpoch = fromFinalEpoch < static_cast<int64_t>(0.80 * static_cast<double>(perEpoch));
  }
  NumpyRandomState random(options.seed);
  GptIndices indices;
  indices.document = documentIndex(documents, epochs, separateFinalEpoch, random);
  indices.sample = sampleIndex(sequenceLengths, indices.document, length, epochs, tokensPerEpoch,
                               options.dropLastPartialSequence, extra);
  int64_t samples = indices.numSamples();
  indices.shuffle = shuffleIndex(separateFinalEpoch ? samplesBeforeFinalEpoch : samples, samples, random);
  return indices;
}

void buildBlendingIndices(const std::vector<double> &weights, int64_t size, std::vector<int16_t> &datasetIndex,
                          std::vector<int64_t> &datasetSampleIndex) {
  std::vector<int64_t> taken(weights.size(), 0);
  datasetIndex.assign(static_cast<size_t>(size), 0);
  datasetSampleIndex.assign(static_cast<size_t>(size), 0);
  for (int64_t sample = 0; sample < size; ++sample) {
    double at = std::max(static_cast<double>(sample), 1.0);
    size_t best = 0;
    double bestError = weights[0] * at - static_cast<double>(taken[0]);
    for (size_t d = 1; d < weights.size(); ++d) {
      double error = weights[d] * at - static_cast<double>(taken[d]);
      if (error > bestError) {
        bestError = error;
        best = d;
      }
    }
    datasetIndex[static_cast<size_t>(sample)] = static_cast<int16_t>(best);
    datasetSampleIndex[static_cast<size_t>(sample)] = taken[best]++;
  }
}

} // namespace megatron::data
