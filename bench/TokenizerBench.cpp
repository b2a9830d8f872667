//===- TokenizerBench.cpp - GPT-2 tokenizer throughput --------------------===//
//
// build/bin/tokenizer-bench [--vocab=vocab.json --merges=merges.txt] [--text=FILE] [--mb=4] [benchmark flags]
//
// Encodes a few MB of English-like text with GPT-2's tokenizer (lib/Tokenizer). Without --text the text is
// generated, deterministically: real English function words with their rough frequencies, and a Zipfian tail of
// made-up content words (about 40,000 distinct ones in 4 MB, as in real prose, so the piece cache misses as it
// would), sentences, capitals, commas, numbers, contractions, quotes and paragraphs. --text reads a file instead
// (taken whole, or its first --mb MB).
//
// Benchmarks, each reporting bytes/s of input:
//   Encode/cold   a fresh tokenizer each iteration: every piece's first occurrence misses the cache
//   Encode/warm   the same tokenizer every iteration (the cache filled by the first)
//   EncodeThreads one tokenizer shared by N threads, each encoding its own slice (throughput of all together)
//   Pretokenize   GPT-2's pattern alone
//
//===----------------------------------------------------------------------===//

#include "megatron/Tokenizer/Gpt2Bpe.h"

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using megatron::tokenizer::Gpt2Bpe;

namespace {

std::string vocabPath = MEGATRON_GPT2_DIR "/vocab.json";
std::string mergesPath = MEGATRON_GPT2_DIR "/merges.txt";
std::string text;

std::string englishLikeText(size_t bytes) {
  // The most frequent English words, most frequent first.
  static const char *common[] = {
      "the",   "of",    "and",   "to",    "a",     "in",    "is",    "that",  "for",    "it",    "was",   "on",
      "with",  "as",    "he",    "be",    "by",    "at",    "his",   "this",  "from",   "or",    "had",   "not",
      "are",   "but",   "which", "have",  "an",    "they",  "you",   "were",  "her",    "she",   "there", "one",
      "all",   "we",    "their", "been",  "has",   "would", "when",  "who",   "will",   "more",  "if",    "no",
      "out",   "so",    "said",  "what",  "up",    "its",   "about", "into",  "than",   "them",  "can",   "only",
      "other", "new",   "some",  "could", "time",  "these", "two",   "may",   "then",   "do",    "first", "any",
      "my",    "now",   "such",  "like",  "our",   "over",  "man",   "me",    "even",   "most",  "made",  "after",
      "also",  "did",   "many",  "before","must",  "through","back", "years", "where",  "much",  "your",  "way",
      "well",  "down",  "should","because","each", "just",  "those", "people","how",    "too",   "little","state",
      "good",  "very",  "make",  "world", "still", "own",   "see",   "men",   "work",   "long",  "get",   "here",
      "between","both", "life",  "being", "under", "never", "day",   "same",  "another","know",  "while", "last",
      "might", "us",    "great", "old",   "year",  "off",   "come",  "since", "against","go",    "came",  "right",
      "used",  "take",  "three", "himself","few",  "house", "use",   "during","without","again", "place", "around",
      "however","home", "small", "found", "thought","went", "say",   "part",  "once",   "general","high", "upon",
      "school","every", "does",  "got",   "united","left",  "number","course","war",    "until", "always","away",
      "something","fact","though","water","less",  "public","put",   "think", "almost", "hand",  "enough","far",
      "took",  "head",  "yet",   "government","system","better","set","told",  "nothing","night", "end",   "why",
  };
  static const char *syllables[] = {"ka", "to", "ri", "men", "sta", "pro", "con", "ver", "tion", "al", "ing",
                                    "er", "in", "de", "re", "com", "mo", "ble", "ly", "ment", "pre", "ex", "ter",
                                    "an", "lo", "ca", "di", "na", "ous", "ful", "ness", "gra", "phy", "lec", "ture",
                                    "sup", "port", "ham", "wick", "ster", "land", "ford", "ville", "ia", "o"};
  const char *contractions[] = {"it's", "don't", "I'm", "we've", "they're", "you'll", "he'd", "isn't", "can't"};
  std::mt19937_64 rng(2026);
  // Content words: rank r drawn with probability ~ 1/r over 60,000 made-up words.
  const size_t numContent = 60000;
  std::vector<std::string> content(numContent);
  for (size_t r = 0; r < numContent; ++r) {
    std::mt19937 wr(uint32_t(r * 2654435761u + 1));
    int n = 1 + int(wr() % 4);
    for (int k = 0; k < n; ++k)
      content[r] += syllables[wr() % (sizeof syllables / sizeof *syllables)];
  }
  std::vector<double> cdf(numContent);
  double sum = 0;
  for (size_t r = 0; r < numContent; ++r)
    cdf[r] = sum += 1.0 / (r + 1);
  auto contentWord = [&] {
    double u = std::uniform_real_distribution<double>(0, sum)(rng);
    return content[std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin()];
  };
  const size_t numCommon = sizeof common / sizeof *common;
  std::string out;
  out.reserve(bytes + 256);
  while (out.size() < bytes) {
    int sentences = 2 + int(rng() % 6);
    for (int s = 0; s < sentences; ++s) {
      int words = 5 + int(rng() % 20);
      bool quote = rng() % 12 == 0;
      if (quote)
        out += '"';
      for (int w = 0; w < words; ++w) {
        std::string word;
        uint64_t kind = rng() % 100;
        if (kind < 55) {
          // Zipf over the common words too.
          size_t r = size_t(std::pow(double(numCommon), std::uniform_real_distribution<double>(0, 1)(rng))) - 1;
          word = common[std::min(r, numCommon - 1)];
        } else if (kind < 95) {
          word = contentWord();
        } else if (kind < 98) {
          word = contractions[rng() % (sizeof contractions / sizeof *contractions)];
        } else {
          word = std::to_string(rng() % (kind == 98 ? 100 : 100000));
        }
        if (w == 0 || rng() % 30 == 0)
          word[0] = char(std::toupper(static_cast<unsigned char>(word[0])));
        if (w > 0 || !quote)
          out += w == 0 && (s > 0) ? " " : (w == 0 ? "" : " ");
        out += word;
        if (w + 1 < words && rng() % 10 == 0)
          out += rng() % 4 == 0 ? ";" : ",";
      }
      out += rng() % 10 == 0 ? "?" : ".";
      if (quote)
        out += '"';
    }
    out += "\n\n";
  }
  out.resize(bytes);
  return out;
}

std::unique_ptr<Gpt2Bpe> loadOrDie() {
  std::string error;
  auto t = Gpt2Bpe::load(vocabPath, mergesPath, error);
  if (!t) {
    std::fprintf(stderr, "tokenizer-bench: %s\n", error.c_str());
    std::exit(1);
  }
  return t;
}

void BM_EncodeCold(benchmark::State &state) {
  size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto t = loadOrDie();
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3);
    state.ResumeTiming();
    t->encode(text, ids);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
  state.counters["bytes/token"] = double(text.size()) / double(tokens);
}

void BM_EncodeWarm(benchmark::State &state) {
  static auto t = loadOrDie();
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  t->encode(text, ids); // fills this thread's cache
  for (auto _ : state) {
    ids.clear();
    t->encode(text, ids);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
}

void BM_EncodeThreads(benchmark::State &state) {
  size_t threads = size_t(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    auto t = loadOrDie();
    state.ResumeTiming();
    std::vector<std::thread> pool;
    for (size_t k = 0; k < threads; ++k)
      pool.emplace_back([&, k] {
        size_t begin = text.size() * k / threads, end = text.size() * (k + 1) / threads;
        std::vector<int32_t> ids;
        ids.reserve((end - begin) / 3);
        t->encode(std::string_view(text).substr(begin, end - begin), ids);
        benchmark::DoNotOptimize(ids.data());
      });
    for (std::thread &th : pool)
      th.join();
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
}

void BM_Pretokenize(benchmark::State &state) {
  std::vector<std::string_view> pieces;
  for (auto _ : state) {
    pieces.clear();
    Gpt2Bpe::pretokenize(text, pieces);
    benchmark::DoNotOptimize(pieces.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
  state.counters["bytes/piece"] = double(text.size()) / double(pieces.size());
}

} // namespace

int main(int argc, char **argv) {
  std::vector<char *> rest = {argv[0]};
  std::string textPath;
  double mb = 4;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--vocab=", 8) == 0)
      vocabPath = argv[i] + 8;
    else if (std::strncmp(argv[i], "--merges=", 9) == 0)
      mergesPath = argv[i] + 9;
    else if (std::strncmp(argv[i], "--text=", 7) == 0)
      textPath = argv[i] + 7;
    else if (std::strncmp(argv[i], "--mb=", 5) == 0)
      mb = std::strtod(argv[i] + 5, nullptr);
    else
      rest.push_back(argv[i]);
  }
  size_t bytes = size_t(mb * 1024 * 1024);
  if (textPath.empty()) {
    text = englishLikeText(bytes);
  } else {
    std::ifstream in(textPath, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "tokenizer-bench: cannot open %s\n", textPath.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    if (text.size() > bytes)
      text.resize(bytes);
  }
  loadOrDie();
  benchmark::AddCustomContext("text", textPath.empty() ? "generated English-like" : textPath);
  benchmark::AddCustomContext("text bytes", std::to_string(text.size()));
  benchmark::RegisterBenchmark("Encode/cold", BM_EncodeCold)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("Encode/warm", BM_EncodeWarm)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("EncodeThreads", BM_EncodeThreads)
      ->Arg(1)
      ->Arg(2)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("Pretokenize", BM_Pretokenize)->Unit(benchmark::kMillisecond)->UseRealTime();
  int restCount = int(rest.size());
  benchmark::Initialize(&restCount, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
