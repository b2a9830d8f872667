//===- Vocabulary.h - Token ids and the words they stand for -*- C++ -*-===//
//
// A word-level vocabulary: id <-> word, its size, and text conversion. Text is words separated by spaces; the
// end-of-document token is written "<|endoftext|>" (GPT-2's name for it) and followed by a newline instead of a
// space, so printed samples show one document per line and tokenize(detokenize(ids)) == ids.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_VOCABULARY_H
#define MEGATRON_RUNTIME_DATA_VOCABULARY_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace megatron::data {

class Vocabulary {
public:
  /// The spelling of the end-of-document token.
  static constexpr std::string_view kEndOfDocument = "<|endoftext|>";

  /// Word i gets id i. Throws std::invalid_argument when a word is empty, contains whitespace, appears twice, or
  /// when `endOfDocument` is not one of the ids.
  Vocabulary(std::vector<std::string> words, int32_t endOfDocument);

  int32_t size() const { return static_cast<int32_t>(words.size()); }
  int32_t endOfDocument() const { return eod; }

  /// The word of an id; throws std::out_of_range for an id outside [0, size()).
  const std::string &word(int32_t id) const;
  /// The id of a word, or nothing when it is not in the vocabulary.
  std::optional<int32_t> id(std::string_view word) const;

  /// The text of a token sequence: words joined by spaces, a newline after each end-of-document token.
  std::string detokenize(const int32_t *ids, size_t count) const;
  std::string detokenize(const std::vector<int32_t> &ids) const { return detokenize(ids.data(), ids.size()); }

  /// The ids of whitespace-separated words. Throws std::invalid_argument naming the first unknown word.
  std::vector<int32_t> tokenize(std::string_view text) const;

private:
  std::vector<std::string> words;
  std::unordered_map<std::string, int32_t> ids;
  int32_t eod;
};

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_VOCABULARY_H
