//===- SyntheticLanguage.h - The built-in corpus: an English-like language with an exact entropy rate -*- C++ -*-===//
//
// Documents of simple English-like sentences about one of four topics (farm, sea, town, forest):
//
//   the small brown dog near two cows chases a hen today . does every sailor swim ? the farmer says " the
//   cats sleep . " <|endoftext|>
//
// The grammar has subject-verb number agreement across an optional prepositional phrase, questions that must end
// in "?", quoted sentences that must be closed, and a topic that persists over the document. It is generated
// left to right by a unifilar state machine (UnifilarProcess): every state is a function of the words so far,
// so the entropy rate is computed exactly, not estimated. docs/data.md documents the grammar and the numbers.
//
// A document is a pure function of (seed, document index): document i draws from its own SplitMix64 stream.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_SYNTHETICLANGUAGE_H
#define MEGATRON_RUNTIME_DATA_SYNTHETICLANGUAGE_H

#include "runtime/data/UnifilarProcess.h"
#include "runtime/data/Vocabulary.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace megatron::data {

class SyntheticLanguage {
public:
  /// The language, built once per process (thread-safe); building it takes a few milliseconds.
  static const SyntheticLanguage &builtin();

  /// Builds the vocabulary, the state machine and its stationary distribution. Prefer builtin().
  SyntheticLanguage();

  const Vocabulary &vocabulary() const { return vocab; }
  const UnifilarProcess &process() const { return *machine; }
  int32_t endOfDocument() const { return vocab.endOfDocument(); }

  /// The entropy rate of the token stream (documents joined by end-of-document tokens), exact up to double
  /// rounding: the lowest loss any model can reach on an unbounded context.
  double entropyRate() const { return machine->entropyRate(); }
  double entropyRateBits() const;

  /// The lowest expected loss per label of a GPT sample of `seqLength` labels that starts at a document start,
  /// as GptBatchLoader's samples do: exact, because the state at every label is known from the sample's tokens.
  /// It is what "floor" means for a training run.
  double sampleFloor(int64_t seqLength) const { return machine->expectedLossOfPrefix(machine->startState(), seqLength); }

  /// Document `documentIndex` of the corpus of `seed`: its words, ending with the end-of-document token.
  std::vector<int32_t> document(uint64_t seed, uint64_t documentIndex) const;

  /// Appends at most `maxTokens` tokens of that document to `out` (a prefix of document() when it is longer) and
  /// returns how many it appended.
  size_t appendDocument(uint64_t seed, uint64_t documentIndex, size_t maxTokens, std::vector<int32_t> &out) const;

  /// A readable name of a state of process(), e.g. "AfterSubject subject=plural topic=sea", for debugging.
  std::string stateName(int32_t state) const;

  /// The topics, in the order of their numbers in stateName() (topic 0 is "not yet known").
  static const std::vector<std::string> &topicNames();

private:
  Vocabulary vocab;
  std::unique_ptr<UnifilarProcess> machine;
  std::vector<uint32_t> stateKeys; // the packed grammar state of each process state
};

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_SYNTHETICLANGUAGE_H
