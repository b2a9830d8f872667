//===- Gpt2Bpe.h - GPT-2's byte-level BPE tokenizer -------------*- C++ -*-===//
//
// GPT-2's byte-level byte-pair encoding, read from GPT-2's own vocab.json and merges.txt, giving the ids of
// Megatron-LM's GPT2BPETokenizer (and OpenAI's encoder.py) byte for byte. MLIR-free. docs/tokenizer.md describes
// the pre-tokenization, the Unicode tables, the special token, invalid UTF-8 and the caches.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TOKENIZER_GPT2BPE_H
#define MEGATRON_TOKENIZER_GPT2BPE_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace megatron::tokenizer {

/// How encode treats the text "<|endoftext|>".
enum class SpecialTokens {
  /// As ordinary text ("<|", "endoftext", "|>"): Megatron-LM's GPT2BPETokenizer, the default.
  AsText,
  /// As the single id endOfText(), wherever it occurs (tiktoken's allowed_special="all", HF's added tokens). The
  /// text between two occurrences is encoded as if it were a string of its own.
  Recognize,
};

class Gpt2Bpe {
public:
  /// Loads GPT-2's vocab.json and merges.txt; null and `error` naming the file, line and problem on bad input.
  static std::unique_ptr<Gpt2Bpe> load(const std::string &vocabJsonPath, const std::string &mergesTxtPath,
                                       std::string &error);
  /// The same from the files' contents; `vocabName` and `mergesName` stand for the files in messages.
  static std::unique_ptr<Gpt2Bpe> loadFromMemory(std::string_view vocabJson, std::string_view mergesTxt,
                                                 std::string &error, const std::string &vocabName = "vocab.json",
                                                 const std::string &mergesName = "merges.txt");

  ~Gpt2Bpe();
  Gpt2Bpe(const Gpt2Bpe &) = delete;
  Gpt2Bpe &operator=(const Gpt2Bpe &) = delete;

  /// Appends the ids of `text` to `ids`. Safe to call from several threads at once on one object. Any bytes are
  /// accepted: an invalid UTF-8 byte is a piece of its own, so decode(encode(x)) == x for every x.
  void encode(std::string_view text, std::vector<int32_t> &ids) const;
  void encode(std::string_view text, std::vector<int32_t> &ids, SpecialTokens special) const;
  /// The bytes of the tokens, concatenated. Throws std::out_of_range on an id outside [0, vocabSize()).
  std::string decode(const int32_t *ids, size_t count) const;
  std::string decode(const std::vector<int32_t> &ids) const { return decode(ids.data(), ids.size()); }

  /// The id of <|endoftext|>; -1 when vocab.json has no such token.
  int32_t endOfText() const;
  /// The number of tokens in vocab.json (50257 for GPT-2).
  size_t vocabSize() const;
  /// The number of merges in merges.txt (50000 for GPT-2).
  size_t numMerges() const;
  /// The bytes a token stands for (the raw bytes, not vocab.json's byte-to-unicode spelling); empty for an id
  /// outside [0, vocabSize()).
  std::string_view tokenBytes(int32_t id) const;
  /// The id of the token spelt `bytes` (raw bytes); -1 when there is none.
  int32_t tokenId(std::string_view bytes) const;

  /// encode keeps, per thread, the ids of the pieces it has met (at most 131,072 pieces, about 10 MB; emptied
  /// when full, and when the thread goes on with another tokenizer). This frees the calling thread's cache now,
  /// rather than at the thread's exit.
  static void releaseThreadCache();

  /// GPT-2's pre-tokenization alone: appends to `pieces` the pieces of `text` that the pattern
  /// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ finds, as views into `text`.
  static void pretokenize(std::string_view text, std::vector<std::string_view> &pieces);

  /// GPT-2's byte-to-unicode map: the code point that stands for `byte` in vocab.json and merges.txt.
  static char32_t byteToUnicode(uint8_t byte);

  struct Impl;

private:
  explicit Gpt2Bpe(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace megatron::tokenizer

#endif // MEGATRON_TOKENIZER_GPT2BPE_H
