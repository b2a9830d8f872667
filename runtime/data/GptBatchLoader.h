//===- GptBatchLoader.h - Megatron-style GPT micro-batches of the built-in corpus -*- C++ -*-===//
//
// A sample is seq_length + 1 consecutive tokens of documents joined by end-of-document tokens, as Megatron's
// GPTDataset cuts them; tokens are its first seq_length, labels its last seq_length (the next token at every
// position), and the loss mask is 1 everywhere (no token is masked, Megatron's default without --eod-mask-loss).
// A micro-batch stacks micro_batch consecutive samples, row-major [micro_batch, seq_length].
//
// Unlike Megatron, whose corpus is finite and whose samples start anywhere in it, the built-in corpus is
// unbounded and every sample starts at a document start: sample i of a split is the first seq_length + 1
// tokens of the documents documentIndex(split, i, 0), documentIndex(split, i, 1), ... (the last one usually
// cut). So
//   - any sample is computed on its own, in O(seq_length), from (seed, split, i): no index files, no warm-up;
//   - the loader's whole state is one integer, the next sample index, and a checkpoint resumes it exactly;
//   - splits never share a document (the split is part of every document index);
//   - the lowest expected loss of a sample is known exactly: SyntheticLanguage::sampleFloor(seq_length).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_GPTBATCHLOADER_H
#define MEGATRON_RUNTIME_DATA_GPTBATCHLOADER_H

#include "runtime/data/SyntheticLanguage.h"

#include <cstdint>
#include <string>
#include <vector>

namespace megatron::data {

enum class Split : uint8_t { Train = 0, Validation = 1, Test = 2 };

const char *toString(Split split);

/// The corpus-wide index of document `ordinal` of sample `sample` of `split`: split in bits 62-63, sample in bits
/// 14-61, ordinal in bits 0-13. Distinct arguments give distinct indices. Throws std::out_of_range when the sample
/// or ordinal does not fit.
uint64_t documentIndex(Split split, uint64_t sample, uint32_t ordinal);

/// The largest sample index documentIndex() accepts.
constexpr uint64_t kMaxSampleIndex = (uint64_t(1) << 48) - 1;

/// A micro-batch, row-major [microBatchSize, seqLength].
struct GptBatch {
  int64_t microBatchSize = 0;
  int64_t seqLength = 0;
  uint64_t firstSample = 0;     // the index of row 0's sample in its split
  std::vector<int32_t> tokens;  // inputs
  std::vector<int32_t> labels;  // labels[b][t] = sample b's token t + 1
  std::vector<float> lossMask;  // 1 everywhere
};

struct GptBatchLoaderOptions {
  uint64_t seed = 1234;
  Split split = Split::Train;
  int64_t seqLength = 128;
  int64_t microBatchSize = 8;
};

class GptBatchLoader {
public:
  /// Throws std::invalid_argument when seqLength is outside [1, 65536] or microBatchSize < 1.
  explicit GptBatchLoader(GptBatchLoaderOptions options,
                          const SyntheticLanguage &language = SyntheticLanguage::builtin());

  const GptBatchLoaderOptions &options() const { return opts; }
  const SyntheticLanguage &language() const { return lang; }

  /// Sample `index`: seqLength + 1 tokens. A pure function of (seed, split, index).
  std::vector<int32_t> sample(uint64_t index) const;
  /// Writes sample `index` to out[0 .. seqLength].
  void sample(uint64_t index, int32_t *out) const;
  /// The document indices sample `index` draws from, in order (the last one is usually cut).
  std::vector<uint64_t> sampleDocuments(uint64_t index) const;

  /// The micro-batch of samples firstSample .. firstSample + microBatchSize - 1. A pure function.
  GptBatch batch(uint64_t firstSample) const;

  /// The micro-batch at the state, then advances the state by microBatchSize.
  GptBatch next();
  /// The state: the index of the next sample next() returns. Save it in a checkpoint.
  uint64_t state() const { return nextSample; }
  /// Resumes from a saved state.
  void restore(uint64_t state) { nextSample = state; }

  /// The lowest expected loss per label (nats) that any model can reach on these samples.
  double floor() const { return lang.sampleFloor(opts.seqLength); }

private:
  GptBatchLoaderOptions opts;
  const SyntheticLanguage &lang;
  uint64_t nextSample = 0;
};

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_GPTBATCHLOADER_H
