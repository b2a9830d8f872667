//===- BpeTrainer.h - Learn byte-level BPE merges, GPT-2 style ---*- C++ -*-===//
//
// Learns a byte-level BPE vocabulary from a corpus the way GPT-2's was made: texts are cut into pieces by GPT-2's
// pattern (Gpt2Bpe::pretokenize), pieces are counted, and merges of adjacent symbols inside pieces are learned
// greedily, the most frequent pair first. The result is a vocab.json and a merges.txt in GPT-2's formats, which
// Gpt2Bpe loads. docs/tokenizer.md describes the rules (ties, repeated tokens, the special token).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TOKENIZER_BPETRAINER_H
#define MEGATRON_TOKENIZER_BPETRAINER_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace megatron::tokenizer {

struct BpeTrainerOptions {
  /// The size of the vocabulary to learn: the 256 bytes, the merges' tokens and <|endoftext|>. Training stops
  /// earlier when no pair occurs minFrequency times.
  size_t vocabSize = 50257;
  /// The fewest occurrences a pair needs to be merged.
  uint64_t minFrequency = 2;
  /// Whether the vocabulary ends with <|endoftext|> (as GPT-2's does).
  bool endOfText = true;
};

struct BpeTrainerResult {
  std::string vocabJson; // GPT-2's format: one object, ids from 0, the bytes first in GPT-2's order
  std::string mergesTxt; // "#version: 0.2", then one merge per line, the first learned first
  size_t vocabSize = 0;
  size_t numMerges = 0;
  /// The corpus's length in tokens, once learned: the sum over its pieces of count x symbols.
  uint64_t corpusTokens = 0;
  /// How many times a pair merged before came back and was merged again (see BpeTrainer.cpp); 0 in practice.
  size_t remerges = 0;
};

class BpeTrainer {
public:
  /// Counts the pieces of one text (a document: no merge crosses texts, or pieces).
  void addText(std::string_view text);
  /// Adds `count` occurrences of one piece, as if a text had held it (pieces from elsewhere, or a test).
  void addPiece(std::string_view piece, uint64_t count = 1);

  /// Learns the merges. Deterministic: the same counts give the same files.
  BpeTrainerResult train(const BpeTrainerOptions &options) const;

  size_t numDistinctPieces() const { return counts.size(); }

private:
  std::unordered_map<std::string, uint64_t> counts;
};

} // namespace megatron::tokenizer

#endif // MEGATRON_TOKENIZER_BPETRAINER_H
