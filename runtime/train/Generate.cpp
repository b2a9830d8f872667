//===- Generate.cpp - Sampling text from a trained model -------------------===//

#include "Generate.h"

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace megatron::train {

int32_t sampleToken(const float *logits, int64_t vocab, const SamplingOptions &options, uint64_t draw) {
  if (options.greedy)
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  // Probabilities at the temperature, in double, most likely first.
  double top = *std::max_element(logits, logits + vocab);
  std::vector<std::pair<double, int32_t>> ranked(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i)
    ranked[static_cast<size_t>(i)] = {std::exp((logits[i] - top) / options.temperature), static_cast<int32_t>(i)};
  std::sort(ranked.begin(), ranked.end(), [](const auto &a, const auto &b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  // Keep the top-k, then the nucleus of top-p.
  size_t keep = options.topK > 0 ? std::min(ranked.size(), static_cast<size_t>(options.topK)) : ranked.size();
  double kept = 0, cumulative = 0;
  for (size_t i = 0; i < keep; ++i)
    kept += ranked[i].first;
  if (options.topP < 1.0) {
    size_t nucleus = 0;
    for (; nucleus < keep; ++nucleus) {
      cumulative += ranked[nucleus].first / kept;
      if (cumulative >= options.topP) {
        ++nucleus;
        break;
      }
    }
    keep = std::max<size_t>(1, std::min(nucleus, keep));
    kept = 0;
    for (size_t i = 0; i < keep; ++i)
      kept += ranked[i].first;
  }
  double u = cpu::randomUniform(options.seed, /*stream=*/0x67656e, draw) * kept;
  for (size_t i = 0; i < keep; ++i) {
    u -= ranked[i].first;
    if (u < 0)
      return ranked[i].second;
  }
  return ranked[keep - 1].second;
}

std::string generate(runtime::Engine &engine, Compute &compute, int64_t vocab, const SamplingOptions &options,
                     uint64_t sample, size_t length, std::vector<int32_t> &tokens) {
  // Under pipeline parallelism every stage runs its chunks' logits programs in chunk order (chunk c + 1 receives
  // what c sent), the last stage samples, and the token reaches every stage by a broadcast.
  const plan::PipelineInfo &pipeline = engine.plan().pipeline;
  const bool pipelined = pipeline.stages > 1;
  const bool last = pipeline.stage == pipeline.stages - 1;
  std::vector<std::string> programs;
  if (!pipelined)
    programs.push_back("logits");
  for (int64_t v = 0; pipelined && v < pipeline.virtualStages; ++v)
    programs.push_back("logits_chunk" + std::to_string(pipeline.globalChunk(v)));
  const plan::Program *program = engine.plan().program(programs.back());
  if (!program)
    return "this plan has no '" + programs.back() +
           "' program (only a model whose loss is one cross-entropy, a GPT, generates)";
  int tokensBuffer = -1;
  for (const plan::Input &input : engine.plan().inputs)
    if (input.name == "tokens")
      tokensBuffer = input.buffer;
  if (tokensBuffer < 0)
    return "this plan has no 'tokens' input to generate from";
  const std::vector<int64_t> &shape = engine.buffer(tokensBuffer).shape;
  int64_t seq = shape[1];
  length = std::min(length, static_cast<size_t>(seq));
  int32_t *input = engine.as<int32_t>(tokensBuffer);
  int64_t step = 0;
  while (tokens.size() < length) {
    // Row 0 holds the text so far; positions past it are don't-cares the causal mask keeps out of the logits read.
    std::fill(input, input + seq, tokens.back());
    std::copy(tokens.begin(), tokens.end(), input);
    if (std::string error = compute.toDevice(tokensBuffer); !error.empty())
      return error;
    runtime::RunContext context{false, 0};
    context.microBatch = step++;
    for (const std::string &name : programs)
      if (std::string error = compute.run(name, context); !error.empty())
        return error;
    int32_t token = 0;
    if (!pipelined || last) {
      int64_t paddedVocab = engine.buffer(program->loss).shape.back();
      const int64_t row = static_cast<int64_t>(tokens.size() - 1) * paddedVocab;
      if (std::string error = compute.toHost(program->loss, row, paddedVocab); !error.empty())
        return error;
      const float *logits = engine.as<float>(program->loss) + row;
      token = sampleToken(logits, std::min(vocab, paddedVocab), options, sample * 65536 + tokens.size());
    }
    if (pipelined)
      if (std::string error = engine.pipelineGroup()->broadcast(&token, 1, plan::DType::I32,
                                                                static_cast<int>(pipeline.stages - 1));
          !error.empty())
        return "sharing the sampled token over the pipeline: " + error;
    tokens.push_back(token);
  }
  return {};
}

} // namespace megatron::train
