//===- JsonLines.h - One line of a JSON-lines corpus, read as Megatron reads it -*- C++ -*-===//
//
// Megatron-LM's tools read corpora as JSON lines: one object per line, the text of a document under a key, either
// a string (one sentence) or a list of strings (its sentences). JsonLine parses one such line the way Python's
// json.loads does (NaN, Infinity, a repeated key's last value) and checks the keys, so that megatron-preprocess
// and megatron-train-bpe accept the same files and name the same problems. Plain C++17; nlohmann/json stays
// inside JsonLines.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_JSONLINES_H
#define MEGATRON_RUNTIME_DATA_JSONLINES_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace megatron::data {

class JsonLine {
public:
  JsonLine();
  ~JsonLine();
  JsonLine(const JsonLine &) = delete;
  JsonLine &operator=(const JsonLine &) = delete;

  /// Parses `line` (a trailing '\n' is ignored) and checks that it is an object whose every one of `keys` holds a
  /// string or a list of strings. Returns "" on success, else the problem: "column 13: malformed JSON: ...",
  /// "empty line (...)", "no key \"text\"", "\"text\" is a number, expected ...". Bytes that are not printable
  /// ASCII are written \xNN in messages.
  std::string parse(std::string_view line, const std::vector<std::string> &keys);

  /// After a successful parse: the sentences under keys[k] (a string value is one sentence), in the line's
  /// storage until the next parse.
  size_t numSentences(size_t k) const;
  std::string_view sentence(size_t k, size_t s) const;

  /// "line N: problem", or "line N, column C: ..." for malformed JSON.
  static std::string atLine(uint64_t lineNumber, const std::string &problem);

private:
  struct Parsed;
  std::unique_ptr<Parsed> parsed;
};

/// A text as one JSON line {"text": ...} with the escapes json.dumps would write (ensure_ascii=False), no newline.
std::string jsonTextLine(std::string_view text, std::string_view key = "text");

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_JSONLINES_H
