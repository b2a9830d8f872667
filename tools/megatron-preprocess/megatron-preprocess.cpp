//===- megatron-preprocess.cpp - Megatron-LM's tools/preprocess_data.py in C++ -===//
//
//   megatron-preprocess --input corpus.jsonl --output-prefix my-gpt2 --tokenizer-type GPT2BPETokenizer \
//       --vocab-file gpt2-vocab.json --merge-file gpt2-merges.txt --append-eod --workers 2
//
// Reads JSON lines, tokenizes the value of each --json-keys key with GPT-2's BPE, and writes one indexed dataset
// per key, <output-prefix>_<key>_document.bin/.idx, with the bytes Megatron-LM's preprocess_data.py writes for
// the same input: one document per line (an empty text is an empty document), one sequence per non-empty
// sentence (a string is one sentence, a list of strings is its sentences), the end-of-document token appended
// to a non-empty document with --append-eod, uint16 tokens for GPT-2's 50257-token vocabulary. docs/datasets.md.
//
// Worker threads tokenize batches of lines; the main thread reads the input and appends the batches' documents
// in input order, so the output does not depend on --workers. A malformed line (its number), a missing key, a
// value that is not text, unreadable files: a message and exit code 1, with no output files written.
//
//===----------------------------------------------------------------------===//

#include "megatron/Support/ToolErrors.h"
#include "megatron/Tokenizer/Gpt2Bpe.h"
#include "runtime/data/IndexedDataset.h"
#include "runtime/data/JsonLines.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using megatron::data::DType;
using megatron::data::IndexedDatasetWriter;
using megatron::data::JsonLine;
using megatron::tokenizer::Gpt2Bpe;

using megatron::fail;

namespace {

const char *const kUsage =
    "usage: megatron-preprocess --input FILE.jsonl --output-prefix PREFIX --tokenizer-type GPT2BPETokenizer\n"
    "                           --vocab-file VOCAB.json --merge-file MERGES.txt [--json-keys KEY [KEY ...]]\n"
    "                           [--append-eod] [--workers N] [--log-interval N] [--progress]\n"
    "\n"
    "Writes PREFIX_KEY_document.bin and .idx for each key (default: text), as Megatron-LM's\n"
    "tools/preprocess_data.py does. See docs/datasets.md.\n";

struct Options {
  std::string input;
  std::vector<std::string> jsonKeys;
  std::string outputPrefix;
  std::string tokenizerType;
  std::string vocabFile;
  std::string mergeFile;
  bool appendEod = false;
  unsigned workers = 0; // 0: one per core
  uint64_t logInterval = 1000;
  bool progress = false;
};

Options parseOptions(int argc, char **argv) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  // Megatron's flags that only matter with sentence splitting or several partitions: accepted where harmless.
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inlineValue;
    if (flag.rfind("--", 0) == 0) {
      size_t eq = flag.find('=');
      if (eq != std::string::npos) {
        inlineValue = flag.substr(eq + 1);
        flag = flag.substr(0, eq);
      }
    }
    auto value = [&]() -> std::string {
      if (inlineValue)
        return *inlineValue;
      if (i + 1 >= args.size() || (args[i + 1].rfind("--", 0) == 0 && args[i + 1].size() > 2))
        fail(flag + " needs a value");
      return args[++i];
    };
    auto noValue = [&]() {
      if (inlineValue)
        fail(flag + " takes no value");
    };
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--input") {
      options.input = value();
    } else if (flag == "--json-keys") {
      // argparse's nargs='+': every following argument up to the next flag.
      options.jsonKeys.clear();
      if (inlineValue) {
        options.jsonKeys.push_back(*inlineValue);
      } else {
        while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0)
          options.jsonKeys.push_back(args[++i]);
      }
      if (options.jsonKeys.empty())
        fail("--json-keys needs at least one key");
    } else if (flag == "--output-prefix") {
      options.outputPrefix = value();
    } else if (flag == "--tokenizer-type") {
      options.tokenizerType = value();
    } else if (flag == "--vocab-file") {
      options.vocabFile = value();
    } else if (flag == "--merge-file") {
      options.mergeFile = value();
    } else if (flag == "--append-eod") {
      noValue();
      options.appendEod = true;
    } else if (flag == "--workers") {
      uint64_t workers = megatron::parsePositiveFlag(flag, value());
      if (workers > 1024)
        fail("--workers: " + std::to_string(workers) + " is more than 1024");
      options.workers = static_cast<unsigned>(workers);
    } else if (flag == "--log-interval") {
      options.logInterval = megatron::parsePositiveFlag(flag, value());
    } else if (flag == "--progress") {
      noValue();
      options.progress = true;
    } else if (flag == "--partitions") {
      std::string text = value();
      if (megatron::parsePositiveFlag(flag, text) != 1)
        fail("--partitions " + text +
             " is not supported: this tool reads the input in one pass with --workers threads (merge separately "
             "preprocessed parts with megatron-merge-datasets)");
    } else if (flag == "--split-sentences") {
      fail("--split-sentences is not supported: Megatron splits sentences with NLTK's punkt model, which this tool "
           "does not reproduce. Give the sentences as a JSON list of strings instead (each non-empty one becomes a "
           "sequence, as Megatron does with a list)");
    } else if (flag == "--keep-newlines" || flag == "--keep-sequential-samples") {
      noValue(); // only meaningful with --split-sentences or --partitions > 1
    } else if (flag == "--lang") {
      value(); // the sentence splitter's language
    } else if (flag == "--find-optimal-num-workers" || flag == "--workers-to-check" || flag == "--max-documents") {
      fail(flag + " is not supported (the worker search of preprocess_data.py); time runs with --workers instead");
    } else {
      fail("unknown argument '" + args[i] + "'\n" + kUsage);
    }
  }
  if (options.input.empty())
    fail("--input is required\n" + std::string(kUsage));
  if (options.outputPrefix.empty())
    fail("--output-prefix is required\n" + std::string(kUsage));
  if (options.tokenizerType.empty())
    fail("--tokenizer-type is required (GPT2BPETokenizer)");
  if (options.tokenizerType != "GPT2BPETokenizer")
    fail("--tokenizer-type " + options.tokenizerType + " is not supported: only GPT2BPETokenizer");
  if (options.vocabFile.empty() || options.mergeFile.empty())
    fail("GPT2BPETokenizer needs --vocab-file and --merge-file (GPT-2's vocab.json and merges.txt)");
  if (options.jsonKeys.empty())
    options.jsonKeys.push_back("text");
  // A key named twice is one output, as in preprocess_data.py (a dict of builders by key).
  std::vector<std::string> unique;
  for (const std::string &key : options.jsonKeys)
    if (std::find(unique.begin(), unique.end(), key) == unique.end())
      unique.push_back(key);
  options.jsonKeys = unique;
  if (options.workers == 0)
    options.workers = std::max(1u, std::thread::hardware_concurrency());
  return options;
}

//===----------------------------------------------------------------------===//
// Batches of lines and their encoding
//===----------------------------------------------------------------------===//

/// Consecutive lines of the input.
struct Batch {
  uint64_t firstLine = 0; // 1-based number of the first line
  std::string text;       // the lines, each with its '\n' except perhaps the input's last
  std::vector<size_t> lineEnds;
};

/// One key's documents of a batch: tokens, the lengths of the sequences, the number of sequences per document.
struct KeyResult {
  std::vector<int32_t> tokens;
  std::vector<int32_t> lengths;
  std::vector<uint32_t> sequencesPerDocument;
};

struct BatchResult {
  std::vector<KeyResult> keys;
  uint64_t documents = 0;
  uint64_t bytes = 0;
  std::string error; // "line N: ..." for the first bad line
};

class Encoder {
public:
  Encoder(const Gpt2Bpe &tokenizer, const Options &options) : tokenizer_(tokenizer), options_(options) {}

  BatchResult encode(const Batch &batch) const {
    BatchResult result;
    result.keys.resize(options_.jsonKeys.size());
    std::vector<int32_t> ids;
    JsonLine parsed;
    size_t start = 0;
    for (size_t l = 0; l < batch.lineEnds.size(); ++l) {
      std::string_view line(batch.text.data() + start, batch.lineEnds[l] - start);
      start = batch.lineEnds[l];
      std::string error = encodeLine(line, parsed, result, ids);
      if (!error.empty()) {
        result.error = JsonLine::atLine(batch.firstLine + l, error);
        return result;
      }
      ++result.documents;
      result.bytes += line.size();
    }
    return result;
  }

private:
  /// preprocess_data.py's Encoder.encode for one line. On error nothing of the line is kept.
  std::string encodeLine(std::string_view text, JsonLine &line, BatchResult &result, std::vector<int32_t> &ids) const {
    // Every key is checked before anything is kept, so that a bad line leaves no partial document.
    if (std::string error = line.parse(text, options_.jsonKeys); !error.empty())
      return error;
    for (size_t k = 0; k < options_.jsonKeys.size(); ++k) {
      KeyResult &out = result.keys[k];
      size_t tokensBefore = out.tokens.size(), lengthsBefore = out.lengths.size();
      for (size_t s = 0, n = line.numSentences(k); s < n; ++s) {
        ids.clear();
        tokenizer_.encode(line.sentence(k, s), ids);
        if (!ids.empty()) { // an empty sentence adds no sequence
          out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
          out.lengths.push_back(static_cast<int32_t>(ids.size()));
        }
      }
      // The end-of-document token goes on the last sequence of a non-empty document only.
      if (options_.appendEod && out.tokens.size() > tokensBefore) {
        out.tokens.push_back(tokenizer_.endOfText());
        ++out.lengths.back();
      }
      out.sequencesPerDocument.push_back(static_cast<uint32_t>(out.lengths.size() - lengthsBefore));
    }
    return {};
  }

  const Gpt2Bpe &tokenizer_;
  const Options &options_;
};

//===----------------------------------------------------------------------===//
// Reading the input in batches
//===----------------------------------------------------------------------===//

class LineReader {
public:
  explicit LineReader(int fd) : fd_(fd) {}

  /// The next batch of whole lines (about kBatchBytes, at least one line); false at the end of the input.
  bool next(Batch &batch, std::string &error) {
    batch.text.clear();
    batch.lineEnds.clear();
    batch.firstLine = nextLine_;
    while (true) {
      // Take the complete lines already read.
      while (batch.text.size() < kBatchBytes) {
        size_t newline = pending_.find('\n', std::max(start_, scan_));
        if (newline == std::string::npos)
          break;
        batch.text.append(pending_, start_, newline + 1 - start_);
        batch.lineEnds.push_back(batch.text.size());
        start_ = newline + 1;
      }
      if (batch.text.size() >= kBatchBytes)
        break;
      scan_ = pending_.size(); // pending_[start_, scan_) holds no '\n'
      if (eof_) {
        if (start_ < pending_.size()) { // a last line without '\n'
          batch.text.append(pending_, start_, std::string::npos);
          batch.lineEnds.push_back(batch.text.size());
          start_ = scan_ = pending_.size();
        }
        break;
      }
      // Drop what was taken, then read more after the unfinished line.
      pending_.erase(0, start_);
      scan_ -= start_;
      start_ = 0;
      size_t old = pending_.size();
      pending_.resize(old + kReadBytes);
      ssize_t got;
      do {
        got = ::read(fd_, &pending_[old], kReadBytes);
      } while (got < 0 && errno == EINTR);
      if (got < 0) {
        error = std::strerror(errno);
        pending_.resize(old);
        return false;
      }
      pending_.resize(old + static_cast<size_t>(got));
      if (got == 0)
        eof_ = true;
    }
    nextLine_ += batch.lineEnds.size();
    return !batch.lineEnds.empty();
  }

private:
  static constexpr size_t kBatchBytes = size_t(1) << 20;
  static constexpr size_t kReadBytes = size_t(1) << 20;
  int fd_;
  std::string pending_; // read but not yet taken: pending_[start_, end)
  size_t start_ = 0;
  size_t scan_ = 0;
  bool eof_ = false;
  uint64_t nextLine_ = 1;
};

//===----------------------------------------------------------------------===//
// Workers
//===----------------------------------------------------------------------===//

class ThreadPool {
public:
  explicit ThreadPool(unsigned threads) {
    for (unsigned t = 0; t < threads; ++t)
      threads_.emplace_back([this] { run(); });
  }
  /// Joins the threads; tasks not yet started are dropped.
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      tasks_.clear();
    }
    ready_.notify_all();
    for (std::thread &thread : threads_)
      thread.join();
  }
  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

private:
  void run() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty())
          return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
};

std::string keyPrefix(const Options &options, const std::string &key) {
  return options.outputPrefix + "_" + key + "_document";
}

/// An error once output writers or worker threads exist: thrown so that the writers remove their temporaries and
/// the threads are joined before the process exits.
struct Failure {
  std::string message;
};

void run(const Options &options) {
  auto startup = std::chrono::steady_clock::now();
  std::string error;
  std::unique_ptr<Gpt2Bpe> tokenizer = Gpt2Bpe::load(options.vocabFile, options.mergeFile, error);
  if (!tokenizer)
    throw Failure{error};
  if (options.appendEod && tokenizer->endOfText() < 0)
    throw Failure{"--append-eod: " + options.vocabFile + " has no <|endoftext|> token"};

  int fd = ::open(options.input.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Failure{"cannot open '" + options.input + "': " + std::strerror(errno)};
  struct CloseOnExit {
    int fd;
    ~CloseOnExit() { ::close(fd); }
  } closeInput{fd};

  // Megatron's DType.optimal_dtype of the tokenizer's vocabulary size: uint16 for GPT-2.
  DType dtype = megatron::data::optimalDType(static_cast<int64_t>(tokenizer->vocabSize()));
  std::vector<std::unique_ptr<IndexedDatasetWriter>> writers;
  for (const std::string &key : options.jsonKeys) {
    writers.push_back(IndexedDatasetWriter::create(keyPrefix(options, key), dtype, error));
    if (!writers.back())
      throw Failure{error};
  }

  bool showProgress = options.progress || ::isatty(STDERR_FILENO);
  Encoder encoder(*tokenizer, options);
  LineReader reader(fd);
  uint64_t documents = 0, bytes = 0, nextReport = options.logInterval;
  auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto rates = [&](double elapsed) {
    char text[160];
    std::snprintf(text, sizeof text, "(%.1f docs/s, %.2f MB/s)", elapsed > 0 ? documents / elapsed : 0.0,
                  elapsed > 0 ? bytes / elapsed / 1024 / 1024 : 0.0);
    return std::string(text);
  };
  if (showProgress)
    std::fprintf(stderr, "megatron-preprocess: %s, %u workers, %s tokens; startup %.2f s\n", options.input.c_str(),
                 options.workers, megatron::data::dtypeName(dtype),
                 std::chrono::duration<double>(start - startup).count());

  // Append one batch's documents in order; the first error ends the run (its earlier documents do not matter:
  // nothing is renamed into place).
  auto write = [&](BatchResult &result) {
    if (!result.error.empty())
      throw Failure{options.input + ": " + result.error};
    for (size_t k = 0; k < writers.size(); ++k) {
      KeyResult &key = result.keys[k];
      size_t token = 0, sequence = 0;
      for (uint32_t count : key.sequencesPerDocument) {
        for (uint32_t s = 0; s < count; ++s, ++sequence) {
          int32_t length = key.lengths[sequence];
          if (std::string failure = writers[k]->addSequence(key.tokens.data() + token, static_cast<size_t>(length));
              !failure.empty())
            throw Failure{failure};
          token += static_cast<size_t>(length);
        }
        writers[k]->endDocument();
      }
    }
    documents += result.documents;
    bytes += result.bytes;
    if (showProgress && documents >= nextReport) {
      // Megatron's progress line, every --log-interval documents.
      std::fprintf(stderr, "Processed %llu documents %s.\n", static_cast<unsigned long long>(documents),
                   rates(seconds()).c_str());
      nextReport = (documents / options.logInterval + 1) * options.logInterval;
    }
  };

  {
    ThreadPool pool(options.workers);
    std::deque<std::future<BatchResult>> inFlight;
    const size_t maxInFlight = 2 * options.workers + 1;
    while (true) {
      auto batch = std::make_shared<Batch>();
      std::string readError;
      bool more = reader.next(*batch, readError);
      if (!readError.empty())
        throw Failure{"cannot read '" + options.input + "': " + readError};
      if (!more)
        break;
      auto task = std::make_shared<std::packaged_task<BatchResult()>>([&encoder, batch] {
        try {
          return encoder.encode(*batch);
        } catch (const std::exception &e) {
          BatchResult result;
          result.error = "line " + std::to_string(batch->firstLine) + " or after: " + e.what();
          return result;
        }
      });
      inFlight.push_back(task->get_future());
      pool.submit([task] { (*task)(); });
      while (inFlight.size() >= maxInFlight) {
        BatchResult result = inFlight.front().get();
        inFlight.pop_front();
        write(result);
      }
    }
    while (!inFlight.empty()) {
      BatchResult result = inFlight.front().get();
      inFlight.pop_front();
      write(result);
    }
  }

  for (std::unique_ptr<IndexedDatasetWriter> &writer : writers)
    if (std::string failure = writer->finalize(); !failure.empty())
      throw Failure{failure};
  if (showProgress) {
    double elapsed = seconds();
    std::fprintf(stderr, "megatron-preprocess: %llu documents, %.2f MB in %.2f s %s\n",
                 static_cast<unsigned long long>(documents), bytes / 1024.0 / 1024.0, elapsed,
                 rates(elapsed).c_str());
    for (size_t k = 0; k < writers.size(); ++k)
      std::fprintf(stderr, "  %s.bin/.idx: %llu documents, %llu sequences, %llu tokens\n",
                   keyPrefix(options, options.jsonKeys[k]).c_str(),
                   static_cast<unsigned long long>(writers[k]->documentCount()),
                   static_cast<unsigned long long>(writers[k]->sequenceCount()),
                   static_cast<unsigned long long>(writers[k]->bytesWritten() / megatron::data::dtypeSize(dtype)));
  }
}

} // namespace

int main(int argc, char **argv) {
  megatron::setToolName("megatron-preprocess");
  Options options = parseOptions(argc, argv);
  try {
    run(options);
  } catch (const Failure &failure) {
    fail(failure.message);
  } catch (const std::exception &e) {
    fail(e.what());
  }
  return 0;
}
