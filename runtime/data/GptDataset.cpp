//===- GptDataset.cpp - A split of an indexed dataset, sampled as Megatron -===//

#include "GptDataset.h"

#include "IndexCache.h"

#include <filesystem>

#include <algorithm>

namespace megatron::data {

std::unique_ptr<GptDataset> GptDataset::build(std::shared_ptr<const IndexedDataset> dataset,
                                              const std::vector<double> &split, int which,
                                              const GptIndexOptions &options, std::string &error,
                                              const std::string &cacheDirectory) {
  static const char *names[] = {"train", "validation", "test"};
  // Megatron splits the sequences (its "documents" here are the .idx's sequences).
  const int64_t count = static_cast<int64_t>(dataset->sequenceCount());
  auto [begin, end] = splitRange(split, which, count);
  if (begin >= end) {
    error = "'" + dataset->prefix() + "': the " + names[which] + " split is empty (" + std::to_string(count) +
            " sequences)";
    return nullptr;
  }
  std::vector<int32_t> lengths(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    lengths[static_cast<size_t>(i)] = dataset->sequenceLength(static_cast<uint64_t>(i));
  std::vector<int32_t> documents;
  for (int64_t i = begin; i < end; ++i)
    documents.push_back(static_cast<int32_t>(i));
  std::unique_ptr<GptDataset> built(new GptDataset());
  // What the indices are a function of: the data (by path and sizes), the split and the sampling options.
  std::error_code ec;
  std::string description =
      "GPTDataset indices\ndataset: " + std::filesystem::absolute(dataset->prefix(), ec).string() +
      "\nsequences: " + std::to_string(count) + "\n.idx bytes: " + std::to_string(dataset->indexFile().size()) +
      "\n.bin bytes: " + std::to_string(dataset->dataFile().size()) + "\nsplit: " + names[which] + " [" +
      std::to_string(begin) + ", " + std::to_string(end) + ")\nsequence length: " +
      std::to_string(options.sequenceLength) + "\nseed: " + std::to_string(options.seed) +
      "\nsamples: " + std::to_string(options.numSamples) + "\ndrop last partial sequence: " +
      std::to_string(options.dropLastPartialSequence) + "\nextra token: " +
      std::to_string(options.addExtraTokenToSequence) + "\n";
  std::optional<GptIndices> indices;
  std::string path, why;
  if (!cacheDirectory.empty()) {
    path = indexCachePath(cacheDirectory, description);
    indices = readIndexCache(path, description, why);
    for (size_t k = 0; indices && k < indices->document.size(); ++k)
      if (indices->document[k] < begin || indices->document[k] >= end)
        indices.reset(); // damaged: rebuilt below
    if (indices)
      built->cache = "read from " + cacheDirectory;
  }
  if (!indices) {
    indices = buildGptIndices(lengths, documents, options, error);
    if (!indices) {
      error = "'" + dataset->prefix() + "', " + names[which] + " split: " + error;
      return nullptr;
    }
    if (!cacheDirectory.empty()) {
      std::string saved = writeIndexCache(path, description, *indices);
      built->cache = saved.empty() ? "saved to " + cacheDirectory : "not saved: " + saved;
    }
  }
  built->dataset = std::move(dataset);
  built->options = options;
  built->indices = std::move(*indices);
  return built;
}

int64_t GptDataset::sample(int64_t i, int32_t *tokens, int32_t pad) const {
  const int64_t want = options.sequenceLength + options.addExtraTokenToSequence;
  const int64_t j = indices.shuffle[static_cast<size_t>(i)];
  const int64_t first = indices.sample[static_cast<size_t>(2 * j)], firstOffset = indices.sample[static_cast<size_t>(2 * j + 1)];
  const int64_t last = indices.sample[static_cast<size_t>(2 * j + 2)], lastOffset = indices.sample[static_cast<size_t>(2 * j + 3)];
  int64_t written = 0;
  for (int64_t at = first; at <= last && written < want; ++at) {
    uint64_t sequence = static_cast<uint64_t>(indices.document[static_cast<size_t>(at)]);
    int64_t from = at == first ? firstOffset : 0;
    int64_t to = at == last ? lastOffset + options.addExtraTokenToSequence
                            : static_cast<int64_t>(dataset->sequenceLength(sequence));
    to = std::min<int64_t>(to, dataset->sequenceLength(sequence));
    int64_t count = std::min(to - from, want - written);
    if (count <= 0)
      continue;
    // In place for the dtypes preprocessing writes (uint16 below 65500 tokens, int32 above); widened otherwise.
    if (const uint16_t *data = dataset->sequenceAs<uint16_t>(sequence))
      std::copy(data + from, data + from + count, tokens + written);
    else if (const int32_t *wide = dataset->sequenceAs<int32_t>(sequence))
      std::copy(wide + from, wide + from + count, tokens + written);
    else
      for (int64_t k = 0; k < count; ++k)
        tokens[written + k] = static_cast<int32_t>(dataset->token(sequence, static_cast<uint64_t>(from + k)));
    written += count;
  }
  for (int64_t k = written; k < want; ++k)
    tokens[k] = pad;
  return written;
}

} // namespace megatron::data
