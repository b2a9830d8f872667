//===- Generate.h - Sampling text from a trained model ----------*- C++ -*-===//

#ifndef MEGATRON_RUNTIME_TRAIN_GENERATE_H
#define MEGATRON_RUNTIME_TRAIN_GENERATE_H

#include "Compute.h"

#include <cstdint>
#include <string>
#include <vector>

namespace megatron::train {

struct SamplingOptions {
  bool greedy = false;
  double temperature = 1.0;
  int topK = 0;      // 0: no limit
  double topP = 1.0; // nucleus: the smallest set of tokens whose probability reaches topP
  uint64_t seed = 0;
};

/// The next token given `logits` over the first `vocab` entries (a padded vocabulary's extra rows are never
/// drawn). Deterministic for (seed, draw).
int32_t sampleToken(const float *logits, int64_t vocab, const SamplingOptions &options, uint64_t draw);

/// Continues `tokens` (which holds the prompt) until it has `length` tokens, running the plan's `logits` program
/// on `compute` once per new token on row 0 of its micro-batch: the tokens written in `engine` go to the compute,
/// and the row of logits sampled comes back. Returns "" or the error.
std::string generate(runtime::Engine &engine, Compute &compute, int64_t vocab, const SamplingOptions &options,
                     uint64_t sample, size_t length, std::vector<int32_t> &tokens);

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_GENERATE_H
