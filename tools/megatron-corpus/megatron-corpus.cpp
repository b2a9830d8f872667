//===- megatron-corpus.cpp - Print the built-in corpus and its entropy figures -===//
//
//   megatron-corpus                      the language's figures (vocabulary, states, entropy rate, floors)
//   megatron-corpus --print 3 --seed 1   and documents 0, 1, 2 of seed 1
//   megatron-corpus --sample 5 --split valid --seq-length 64   and the 65 tokens of validation sample 5
//   megatron-corpus --stats 200000       and empirical unigram/bigram entropies of 200000 tokens
//   megatron-corpus --jsonl c.jsonl --documents 10000    documents 0..9999 as JSON lines, for megatron-train-bpe
//                                        and megatron-preprocess (Megatron's data path)
//   megatron-corpus --vocab-file v.json --merge-file m.txt   and the entropy rate per token of that BPE
//
// docs/data.md describes the language and the loader.
//
//===----------------------------------------------------------------------===//

#include "megatron/Support/AtomicFile.h"
#include "megatron/Tokenizer/Gpt2Bpe.h"
#include "runtime/data/CorpusText.h"
#include "runtime/data/GptBatchLoader.h"
#include "runtime/data/JsonLines.h"
#include "runtime/data/SyntheticLanguage.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace megatron::data;

namespace {

const char *const kUsage =
    "usage: megatron-corpus [--seed N] [--print N] [--first N] [--sample I] [--split train|valid|test]\n"
    "                       [--seq-length N] [--stats TOKENS] [--jsonl FILE --documents N]\n"
    "                       [--vocab-file VOCAB.json --merge-file MERGES.txt]\n";

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "megatron-corpus: %s\n", message.c_str());
  std::exit(1);
}

uint64_t parseUnsigned(const char *flag, const char *text) {
  if (!text)
    fail(std::string(flag) + " needs a value");
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (*text == '\0' || *text == '-' || *end != '\0' || errno == ERANGE)
    fail(std::string(flag) + ": '" + text + "' is not a non-negative integer");
  return v;
}

/// Empirical entropies (nats/token) of `tokens`: unigram H(X) and bigram H(X_t | X_{t-1}), plug-in estimates.
void printStats(const SyntheticLanguage &lang, uint64_t seed, uint64_t count) {
  std::vector<int32_t> tokens;
  for (uint64_t d = 0; tokens.size() < count; ++d)
    lang.appendDocument(seed, d, count - tokens.size(), tokens);
  const int32_t v = lang.vocabulary().size();
  std::vector<double> unigram(v, 0.0), context(v, 0.0);
  std::map<std::pair<int32_t, int32_t>, double> bigram;
  for (size_t i = 0; i < tokens.size(); ++i) {
    unigram[tokens[i]] += 1;
    if (i > 0) {
      context[tokens[i - 1]] += 1;
      bigram[{tokens[i - 1], tokens[i]}] += 1;
    }
  }
  double h1 = 0.0, h2 = 0.0;
  const double n = static_cast<double>(tokens.size());
  for (double c : unigram)
    if (c > 0)
      h1 -= c / n * std::log(c / n);
  for (const auto &[pair, c] : bigram)
    h2 -= c / (n - 1) * std::log(c / context[pair.first]);
  std::printf("empirical, %llu tokens of seed %llu: unigram entropy %.4f nats/token, bigram conditional entropy "
              "%.4f nats/token\n",
              static_cast<unsigned long long>(tokens.size()), static_cast<unsigned long long>(seed), h1, h2);
}

/// The entropy rate per token of the language tokenized with a GPT-2-format BPE, exact (CorpusText.h).
void printSubwordRate(const SyntheticLanguage &lang, const std::string &vocabFile, const std::string &mergeFile) {
  std::string error;
  std::unique_ptr<megatron::tokenizer::Gpt2Bpe> bpe = megatron::tokenizer::Gpt2Bpe::load(vocabFile, mergeFile, error);
  if (!bpe)
    fail(error);
  std::vector<int32_t> ids;
  double perWord = tokensPerWord(lang, [&](std::string_view text) {
    ids.clear();
    bpe->encode(text, ids);
    return ids.size();
  });
  std::printf("with %s (%zu tokens): %.6f tokens per word; entropy rate %.6f nats/token (exact; a lower bound on "
              "the expected loss of any model)\n",
              vocabFile.c_str(), bpe->vocabSize(), perWord, lang.entropyRate() / perWord);
}

/// Documents first .. first + count - 1 as JSON lines {"text": ...}.
void writeJsonLines(const SyntheticLanguage &lang, uint64_t seed, uint64_t first, uint64_t count,
                    const std::string &path) {
  std::string out;
  for (uint64_t d = first; d < first + count; ++d) {
    out += megatron::data::jsonTextLine(documentText(lang, seed, d));
    out += '\n';
  }
  if (std::string failure = megatron::writeOutput(path, out); !failure.empty())
    fail(failure);
  if (path != "-")
    std::printf("wrote documents %llu..%llu of seed %llu to %s (%zu bytes)\n", static_cast<unsigned long long>(first),
                static_cast<unsigned long long>(first + count - 1), static_cast<unsigned long long>(seed), path.c_str(),
                out.size());
}

} // namespace

int main(int argc, char **argv) {
  uint64_t seed = 1234, print = 0, first = 0, seqLength = 128, stats = 0, documents = 0;
  std::string jsonl, vocabFile, mergeFile;
  std::optional<uint64_t> sampleIndex;
  Split split = Split::Train;
  for (int i = 1; i < argc; ++i) {
    const char *flag = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!std::strcmp(flag, "--help") || !std::strcmp(flag, "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!std::strcmp(flag, "--seed"))
      seed = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--print"))
      print = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--first"))
      first = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--sample"))
      sampleIndex = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--seq-length"))
      seqLength = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--stats"))
      stats = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--documents"))
      documents = parseUnsigned(flag, value);
    else if (!std::strcmp(flag, "--jsonl") || !std::strcmp(flag, "--vocab-file") || !std::strcmp(flag, "--merge-file")) {
      if (!value)
        fail(std::string(flag) + " needs a value");
      (!std::strcmp(flag, "--jsonl") ? jsonl : !std::strcmp(flag, "--vocab-file") ? vocabFile : mergeFile) = value;
    }
    else if (!std::strcmp(flag, "--split")) {
      if (!value)
        fail("--split needs a value");
      if (!std::strcmp(value, "train"))
        split = Split::Train;
      else if (!std::strcmp(value, "valid"))
        split = Split::Validation;
      else if (!std::strcmp(value, "test"))
        split = Split::Test;
      else
        fail(std::string("--split: '") + value + "' is not train, valid or test");
    } else
      fail(std::string("unknown argument '") + flag + "'\n" + kUsage);
    ++i;
  }
  if (seqLength < 1 || seqLength > 65536)
    fail("--seq-length must be in [1, 65536]");
  if (!jsonl.empty() && documents == 0)
    fail("--jsonl needs --documents N (N > 0)");
  if (jsonl.empty() && documents != 0)
    fail("--documents is for --jsonl");
  if (vocabFile.empty() != mergeFile.empty())
    fail("--vocab-file and --merge-file go together");

  const SyntheticLanguage &language = SyntheticLanguage::builtin();
  if (jsonl == "-") { // the documents alone on standard output, to pipe
    writeJsonLines(language, seed, first, documents, jsonl);
    return 0;
  }

  const SyntheticLanguage &lang = language;
  const UnifilarProcess &p = lang.process();
  std::printf("built-in language: %d words, %d states\n", lang.vocabulary().size(), p.numStates());
  std::printf("entropy rate: %.6f nats/token = %.6f bits/token (exact; stationary residual %.1e after %lld power "
              "iterations)\n",
              lang.entropyRate(), lang.entropyRateBits(), p.stationaryResidual(),
              static_cast<long long>(p.powerIterations()));
  double eodRate = 0.0; // stationary frequency of the end-of-document token
  for (int32_t s = 0; s < p.numStates(); ++s)
    if (const Transition *t = p.find(s, lang.endOfDocument()))
      eodRate += p.stationaryDistribution()[s] * t->probability;
  std::printf("mean document length: %.4f tokens (end-of-document token included)\n", 1.0 / eodRate);
  std::printf("sample floor at seq-length %llu: %.6f nats/token\n", static_cast<unsigned long long>(seqLength),
              lang.sampleFloor(static_cast<int64_t>(seqLength)));
  if (stats)
    printStats(lang, seed, stats);
  if (!vocabFile.empty())
    printSubwordRate(lang, vocabFile, mergeFile);
  if (!jsonl.empty()) {
    writeJsonLines(lang, seed, first, documents, jsonl);
    return 0;
  }

  for (uint64_t d = first; d < first + print; ++d) {
    std::vector<int32_t> doc = lang.document(seed, d);
    std::printf("\ndocument %llu (%zu tokens):\n%s", static_cast<unsigned long long>(d), doc.size(),
                lang.vocabulary().detokenize(doc).c_str());
  }
  if (sampleIndex) {
    try {
      GptBatchLoader loader({seed, split, static_cast<int64_t>(seqLength), 1}, lang);
      std::vector<int32_t> tokens = loader.sample(*sampleIndex);
      std::printf("\n%s sample %llu (%zu tokens):\n%s\n", toString(split),
                  static_cast<unsigned long long>(*sampleIndex), tokens.size(),
                  lang.vocabulary().detokenize(tokens).c_str());
    } catch (const std::exception &e) {
      fail(e.what());
    }
  }
  return 0;
}
