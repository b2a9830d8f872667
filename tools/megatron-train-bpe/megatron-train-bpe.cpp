//===- megatron-train-bpe.cpp - Learn a GPT-2-format BPE vocabulary from JSON lines -===//
//
//   megatron-train-bpe --input corpus.jsonl --vocab-size 8192 --output-prefix my
//       writes my-vocab.json and my-merges.txt, which megatron-preprocess and megatron-run take as
//       --vocab-file and --merge-file (GPT2BPETokenizer)
//
// Reads the same JSON lines as megatron-preprocess (one document per line, the text under --json-keys, a string
// or a list of sentences), counts GPT-2's pre-tokenized pieces and learns merges with BpeTrainer
// (docs/tokenizer.md). A malformed line (its number), a missing key, an impossible size: a message and exit code
// 1, with no output written. Both files are replaced atomically.
//
//===----------------------------------------------------------------------===//

#include "megatron/Support/ToolErrors.h"
#include "megatron/Support/AtomicFile.h"
#include "megatron/Tokenizer/BpeTrainer.h"
#include "megatron/Tokenizer/Gpt2Bpe.h"
#include "runtime/data/JsonLines.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using megatron::fail;

namespace {

const char *const kUsage =
    "usage: megatron-train-bpe --input FILE.jsonl [FILE.jsonl ...] --vocab-size N --output-prefix PREFIX\n"
    "                          [--json-keys KEY [KEY ...]] [--min-frequency N] [--no-endoftext]\n"
    "\n"
    "Learns GPT-2's byte-level BPE from the texts and writes PREFIX-vocab.json and PREFIX-merges.txt.\n"
    "See docs/tokenizer.md.\n";

struct Options {
  std::vector<std::string> inputs;
  std::vector<std::string> jsonKeys{"text"};
  std::string outputPrefix;
  uint64_t vocabSize = 0;
  uint64_t minFrequency = 2;
  bool endOfText = true;
};

Options parseOptions(int argc, char **argv) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  // The values of a flag that takes several (argparse's nargs='+'): every argument up to the next flag.
  auto values = [&](size_t &i) {
    std::vector<std::string> out;
    while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0)
      out.push_back(args[++i]);
    if (out.empty())
      fail(args[i] + " needs a value");
    return out;
  };
  auto value = [&](size_t &i) {
    std::vector<std::string> out = values(i);
    if (out.size() > 1)
      fail(args[i - out.size()] + " takes one value; '" + out[1] + "' follows it");
    return out[0];
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string flag = args[i];
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--input") {
      options.inputs = values(i);
    } else if (flag == "--json-keys") {
      options.jsonKeys = values(i);
    } else if (flag == "--output-prefix") {
      options.outputPrefix = value(i);
    } else if (flag == "--vocab-size") {
      options.vocabSize = megatron::parsePositiveFlag(flag, value(i));
    } else if (flag == "--min-frequency") {
      options.minFrequency = megatron::parsePositiveFlag(flag, value(i));
    } else if (flag == "--no-endoftext") {
      options.endOfText = false;
    } else {
      fail("unknown argument '" + flag + "'\n" + kUsage);
    }
  }
  if (options.inputs.empty())
    fail("--input is required\n" + std::string(kUsage));
  if (options.outputPrefix.empty())
    fail("--output-prefix is required\n" + std::string(kUsage));
  if (options.vocabSize == 0)
    fail("--vocab-size is required\n" + std::string(kUsage));
  const uint64_t smallest = 256 + (options.endOfText ? 1 : 0);
  if (options.vocabSize < smallest)
    fail("--vocab-size " + std::to_string(options.vocabSize) + " is below " + std::to_string(smallest) +
         ": the vocabulary holds the 256 bytes" + (options.endOfText ? " and <|endoftext|>" : ""));
  return options;
}

/// Counts the pieces of every text of one input. Returns the number of documents.
uint64_t countInput(const std::string &path, const Options &options, megatron::tokenizer::BpeTrainer &trainer) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("cannot open '" + path + "': " + std::strerror(errno));
  megatron::data::JsonLine line;
  std::string text;
  uint64_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (std::string error = line.parse(text, options.jsonKeys); !error.empty())
      fail(path + ": " + megatron::data::JsonLine::atLine(number, error));
    for (size_t k = 0; k < options.jsonKeys.size(); ++k)
      for (size_t s = 0, n = line.numSentences(k); s < n; ++s)
        trainer.addText(line.sentence(k, s));
  }
  if (in.bad())
    fail("cannot read '" + path + "': " + std::strerror(errno));
  return number;
}

} // namespace

int main(int argc, char **argv) {
  megatron::setToolName("megatron-train-bpe");
  Options options = parseOptions(argc, argv);
  auto start = std::chrono::steady_clock::now();
  megatron::tokenizer::BpeTrainer trainer;
  uint64_t documents = 0;
  for (const std::string &input : options.inputs)
    documents += countInput(input, options, trainer);
  if (trainer.numDistinctPieces() == 0)
    fail("the input has no text to learn from (" + std::to_string(documents) + " documents)");

  megatron::tokenizer::BpeTrainerOptions trainerOptions;
  trainerOptions.vocabSize = options.vocabSize;
  trainerOptions.minFrequency = options.minFrequency;
  trainerOptions.endOfText = options.endOfText;
  megatron::tokenizer::BpeTrainerResult result = trainer.train(trainerOptions);

  // The files must load as a GPT2BPETokenizer before they replace anything.
  std::string error;
  if (!megatron::tokenizer::Gpt2Bpe::loadFromMemory(result.vocabJson, result.mergesTxt, error))
    fail("internal error: the learned vocabulary does not load: " + error);
  const std::string vocabPath = options.outputPrefix + "-vocab.json";
  const std::string mergesPath = options.outputPrefix + "-merges.txt";
  for (const auto &[path, contents] : {std::pair{vocabPath, &result.vocabJson}, {mergesPath, &result.mergesTxt}})
    if (std::string failure = megatron::writeFileAtomically(path, *contents); !failure.empty())
      fail(failure);

  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("megatron-train-bpe: %llu documents, %zu distinct pieces: %zu tokens (%zu merges)%s; the corpus is "
              "%llu tokens; %.2f s\n",
              static_cast<unsigned long long>(documents), trainer.numDistinctPieces(), result.vocabSize,
              result.numMerges,
              result.vocabSize < options.vocabSize ? ", fewer than asked: no pair left occurs --min-frequency times"
                                                   : "",
              static_cast<unsigned long long>(result.corpusTokens), seconds);
  std::printf("wrote %s and %s\n", vocabPath.c_str(), mergesPath.c_str());
  return 0;
}
