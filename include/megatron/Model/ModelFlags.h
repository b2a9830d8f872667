//===- ModelFlags.h - Megatron-LM's model flags on the command line -*- C++ -*-===//

#ifndef MEGATRON_MODEL_MODELFLAGS_H
#define MEGATRON_MODEL_MODELFLAGS_H

#include "megatron/Model/ModelConfig.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace megatron {

/// Registers Megatron-LM's model flags (--num-layers, --hidden-size, ...) plus --model and --preset with
/// llvm::cl. Construct one before llvm::cl::ParseCommandLineOptions, then call resolve().
class ModelFlags {
public:
  ModelFlags();
  ~ModelFlags();
  ModelFlags(const ModelFlags &) = delete;
  ModelFlags &operator=(const ModelFlags &) = delete;

  /// The configuration the command line describes: the --preset if one was given, overridden by every flag given
  /// explicitly, with Megatron's defaults resolved and validated. On failure returns std::nullopt and appends one
  /// message per problem, each naming its flag.
  std::optional<ModelConfig> resolve(std::vector<std::string> &errors) const;

private:
  struct Options;
  std::unique_ptr<Options> options;
};

/// The number of tokens in a vocabulary file: the entries of a JSON object (GPT-2's vocab.json) or the non-empty
/// lines of a text file (BERT's vocab.txt). On failure returns std::nullopt and sets `error`.
std::optional<int64_t> readVocabSize(const std::string &path, std::string &error);

} // namespace megatron

#endif // MEGATRON_MODEL_MODELFLAGS_H
