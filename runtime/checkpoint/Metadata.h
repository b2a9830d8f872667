//===- Metadata.h - metadata.json: writing, parsing, validating -*- C++ -*-===//
//
// Internal to runtime/checkpoint. metadata.json holds everything but the tensors' bytes: the format name and
// version, the iteration, the fingerprints, the run state, and the table of tensors. Decoding validates every
// field, so that the reader never trusts an offset or a size it has not checked.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CHECKPOINT_METADATA_H
#define MEGATRON_RUNTIME_CHECKPOINT_METADATA_H

#include "runtime/checkpoint/Checkpoint.h"

namespace megatron::ckpt {

struct Metadata {
  CheckpointInfo info;
  std::vector<TensorRecord> tensors;
  /// Size of the data file, header included.
  uint64_t dataBytes = 0;
};

/// metadata.json's text: one line per tensor, so that it reads well and diffs well. Deterministic: the same
/// checkpoint gives the same bytes. "" or an error (a string that is not valid UTF-8).
std::string encodeMetadata(const Metadata &metadata, std::string &text);

/// Parses `text` (the contents of the file `path`) as JSON and checks the format name and version: the checks
/// that make sense before the metadata's checksum is verified. "" or an error naming `path`.
std::string parseMetadataHead(const std::string &path, const std::string &text, nlohmann::json &document);

/// Decodes every field of a document that passed parseMetadataHead and validates the table of tensors (known
/// dtypes, sizes that match the shapes, aligned offsets inside the data file, no overlaps, unique names).
/// "" or an error naming `path` and the tensor.
std::string decodeMetadata(const std::string &path, const nlohmann::json &document, Metadata &metadata);

} // namespace megatron::ckpt

#endif // MEGATRON_RUNTIME_CHECKPOINT_METADATA_H
