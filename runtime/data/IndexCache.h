//===- IndexCache.h - GPT dataset indices saved beside the data -*- C++ -*-===//
//
// Building a split's indices reads every sequence length and shuffles arrays as long as the corpus: seconds for
// gigabytes, minutes for terabytes. Like Megatron (<prefix dir>/cache/GPTDataset_indices, --data-cache-path), the
// indices are saved once, beside the data, and reused by every later run and rank that asks for the same ones.
// A cache file holds a description of what it was built from (the dataset's path and sizes, the split, sequence
// length, seed, samples): it is used only when the description is the same, and a file that is damaged or
// describes something else is rebuilt. Written to a temporary name and renamed, so concurrent ranks never read a
// half-written file. Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_INDEXCACHE_H
#define MEGATRON_RUNTIME_DATA_INDEXCACHE_H

#include "runtime/data/GptSampling.h"

#include <optional>
#include <string>

namespace megatron::data {

/// The cache file for `description` in `directory`.
std::string indexCachePath(const std::string &directory, const std::string &description);

/// The indices saved at `path` for `description`; nullopt (and `why`) when there is no file, it is damaged, or it
/// describes something else.
std::optional<GptIndices> readIndexCache(const std::string &path, const std::string &description, std::string &why);

/// Saves `indices` for `description` at `path` (creating its directory). Returns an empty string or the error.
std::string writeIndexCache(const std::string &path, const std::string &description, const GptIndices &indices);

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_INDEXCACHE_H
