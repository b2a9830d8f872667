//===- CorpusText.h - The built-in language as text for a subword tokenizer -*- C++ -*-===//
//
// The built-in corpus (SyntheticLanguage) goes through Megatron's data path like any corpus: its documents are
// written as JSON lines, a BPE vocabulary is learned from them (megatron-train-bpe), megatron-preprocess
// tokenizes them into a .bin/.idx dataset, and megatron-run samples it as Megatron's GPTDataset does. A subword
// tokenizer changes what a token is, and with it the entropy per token; because the tokenization is invertible,
// the new rate is still exact: entropyRate() / tokensPerWord(). docs/data.md.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_CORPUSTEXT_H
#define MEGATRON_RUNTIME_DATA_CORPUSTEXT_H

#include "runtime/data/SyntheticLanguage.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace megatron::data {

/// A document as a JSON-lines corpus holds it: its words joined by single spaces, without the end-of-document
/// word (megatron-preprocess --append-eod appends the tokenizer's own end-of-document token instead).
std::string documentText(const SyntheticLanguage &language, uint64_t seed, uint64_t documentIndex);

/// The expected number of subword tokens per word of the stationary stream, exactly:
///   sum over states s of pi(s) * sum over words w of P(w | s) * tokens(w, s),
/// where tokens(w, s) is countTokens of the word's text as documentText writes it: without a leading space at a
/// document's start (the process's start state), with one everywhere else; the end-of-document word is one token.
/// The tokenized stream's entropy rate is language.entropyRate() / tokensPerWord(...) nats per token.
double tokensPerWord(const SyntheticLanguage &language, const std::function<size_t(std::string_view)> &countTokens);

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_CORPUSTEXT_H
