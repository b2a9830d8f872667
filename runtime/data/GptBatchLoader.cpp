//===- GptBatchLoader.cpp - Megatron-style GPT micro-batches of the built-in corpus ---===//

#include "runtime/data/GptBatchLoader.h"
#include "runtime/data/BatchSource.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace megatron::data {

namespace {

constexpr int kOrdinalBits = 14;
constexpr int kSampleBits = 48;
constexpr int64_t kMaxSeqLength = 65536; // every document has at least 5 tokens: fewer than 2^14 per sample

} // namespace

const char *toString(Split split) {
  switch (split) {
  case Split::Train:
    return "train";
  case Split::Validation:
    return "valid";
  case Split::Test:
    return "test";
  }
  return "?";
}

uint64_t documentIndex(Split split, uint64_t sample, uint32_t ordinal) {
  if (sample > kMaxSampleIndex)
    throw std::out_of_range("data loader: sample index " + std::to_string(sample) + " is above the largest, " +
                            std::to_string(kMaxSampleIndex));
  if (ordinal >= (uint32_t(1) << kOrdinalBits))
    throw std::out_of_range("data loader: a sample cannot hold " + std::to_string(ordinal + 1) + " documents");
  return uint64_t(split) << (kSampleBits + kOrdinalBits) | sample << kOrdinalBits | ordinal;
}

GptBatchLoader::GptBatchLoader(GptBatchLoaderOptions options, const SyntheticLanguage &language)
    : opts(options), lang(language) {
  if (opts.seqLength < 1 || opts.seqLength > kMaxSeqLength)
    throw std::invalid_argument("data loader: the sequence length must be in [1, " + std::to_string(kMaxSeqLength) +
                                "], not " + std::to_string(opts.seqLength));
  if (opts.microBatchSize < 1)
    throw std::invalid_argument("data loader: the micro-batch size must be at least 1, not " +
                                std::to_string(opts.microBatchSize));
}

void GptBatchLoader::sample(uint64_t index, int32_t *out) const {
  const size_t want = static_cast<size_t>(opts.seqLength) + 1;
  std::vector<int32_t> tokens;
  tokens.reserve(want);
  for (uint32_t ordinal = 0; tokens.size() < want; ++ordinal)
    lang.appendDocument(opts.seed, documentIndex(opts.split, index, ordinal), want - tokens.size(), tokens);
  std::copy(tokens.begin(), tokens.end(), out);
}

std::vector<int32_t> GptBatchLoader::sample(uint64_t index) const {
  std::vector<int32_t> tokens(static_cast<size_t>(opts.seqLength) + 1);
  sample(index, tokens.data());
  return tokens;
}

std::vector<uint64_t> GptBatchLoader::sampleDocuments(uint64_t index) const {
  const size_t want = static_cast<size_t>(opts.seqLength) + 1;
  std::vector<uint64_t> documents;
  std::vector<int32_t> tokens;
  for (uint32_t ordinal = 0; tokens.size() < want; ++ordinal) {
    documents.push_back(documentIndex(opts.split, index, ordinal));
    lang.appendDocument(opts.seed, documents.back(), want - tokens.size(), tokens);
  }
  return documents;
}

GptBatch GptBatchLoader::batch(uint64_t firstSample) const {
  if (firstSample > kMaxSampleIndex + 1 - static_cast<uint64_t>(opts.microBatchSize))
    throw std::out_of_range("data loader: the micro-batch at sample " + std::to_string(firstSample) +
                            " runs past the largest sample index, " + std::to_string(kMaxSampleIndex));
  return batchOfSamples(opts.microBatchSize, opts.seqLength, firstSample,
                        [this](uint64_t index, int32_t *row) { sample(index, row); });
}

GptBatch GptBatchLoader::next() {
  GptBatch out = batch(nextSample);
  nextSample += static_cast<uint64_t>(opts.microBatchSize);
  return out;
}

} // namespace megatron::data
