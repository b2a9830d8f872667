//===- GptSamplingTest.cpp - Megatron's GPT indices, split and blending ----===//
//
// numpy's RandomState is the reference for the random parts: /usr/bin/python3 with numpy shuffles the same
// arrays from the same seeds, and builds a GPTDataset's three indices as megatron/core/datasets/gpt_dataset.py
// does (its numpy calls; the sample index from a transliteration of helpers.cpp's loop). The deterministic parts
// are checked by hand. Skipped, saying why, where python3 or numpy is missing.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/GptSampling.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <unistd.h>

using namespace megatron::data;

namespace {

/// Runs a python3 program and returns what it printed, or nothing when python3 with numpy cannot run.
std::optional<std::string> python(const std::string &program) {
  std::string command = "/usr/bin/python3 -c \"import numpy\" 2>/dev/null && /usr/bin/python3 - <<'PY'\n" + program +
                        "\nPY\n";
  FILE *pipe = popen(command.c_str(), "r");
  if (!pipe)
    return std::nullopt;
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe))
    out.append(buffer, n);
  if (pclose(pipe) != 0)
    return std::nullopt;
  return out;
}

std::vector<int64_t> numbers(const std::string &line) {
  std::istringstream in(line);
  std::vector<int64_t> values;
  for (int64_t v; in >> v;)
    values.push_back(v);
  return values;
}

TEST(NumpyRandomState, ShufflesAsNumpyDoes) {
  const std::vector<std::pair<uint32_t, int>> cases = {{0, 1}, {1, 2}, {1234, 10}, {4294967295u, 1000}, {42, 100000}};
  std::string program = "import numpy\n";
  for (auto [seed, n] : cases)
    program += "x = numpy.arange(" + std::to_string(n) + ", dtype=numpy.int64); numpy.random.RandomState(" +
               std::to_string(seed) + ").shuffle(x); print(' '.join(map(str, x)))\n";
  std::optional<std::string> out = python(program);
  if (!out)
    GTEST_SKIP() << "needs /usr/bin/python3 with numpy (Debian's python3-numpy) as the reference";
  std::istringstream lines(*out);
  for (auto [seed, n] : cases) {
    std::string line;
    ASSERT_TRUE(std::getline(lines, line));
    std::vector<int64_t> mine(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
      mine[static_cast<size_t>(i)] = i;
    NumpyRandomState(seed).shuffle(mine);
    EXPECT_EQ(mine, numbers(line)) << "seed " << seed << ", n " << n;
  }
}

/// The reference: gpt_dataset.py's index building with numpy, for `sizes`, the documents [0, n), seq, seed and
/// the samples asked for.
std::string referenceProgram(const std::vector<int32_t> &sizes, int64_t seq, uint32_t seed, int64_t numSamples) {
  std::ostringstream p;
  p << "import numpy\n";
  p << "sizes = numpy.array([";
  for (int32_t s : sizes)
    p << s << ",";
  p << "], dtype=numpy.int32)\n";
  p << "seq, seed, num_samples, extra = " << seq << ", " << seed << ", " << numSamples << ", 1\n";
  p << R"(documents = numpy.arange(len(sizes), dtype=numpy.int32)
tokens_per_epoch = int(numpy.sum(sizes[documents]))
num_epochs, num_tokens = 1, tokens_per_epoch
while num_tokens < num_samples * seq + extra:
    num_epochs += 1
    num_tokens += tokens_per_epoch
separate = False
if num_epochs > 1:
    sans = ((num_epochs - 1) * tokens_per_epoch - extra) // seq
    separate = (num_samples - sans) < int(0.80 * ((tokens_per_epoch - extra) // seq))
rs = numpy.random.RandomState(seed)
def doc_index(epochs, separate_final):
    if not separate_final or epochs == 1:
        d = numpy.mgrid[0:epochs, 0:len(documents)][1]
        d[:] = documents
        d = d.reshape(-1).astype(numpy.int32)
        rs.shuffle(d)
        return d
    return numpy.concatenate((doc_index(epochs - 1, False), doc_index(1, False)))
d = doc_index(num_epochs, separate)
n = (num_epochs * tokens_per_epoch - extra) // seq
s = [0, 0]
pos, off = 0, 0
for k in range(n):
    remaining = seq + extra
    while remaining != 0:
        length = int(sizes[d[pos]]) - off
        remaining -= length
        if remaining <= 0:
            off += remaining + length - extra
            remaining = 0
        else:
            pos += 1
            off = 0
    s += [pos, off]
def shuffle_index(first, total):
    a = numpy.arange(0, first, dtype=numpy.uint32); rs.shuffle(a)
    if first == total: return a
    b = numpy.arange(first, total, dtype=numpy.uint32); rs.shuffle(b)
    return numpy.concatenate((a, b))
sh = shuffle_index(sans if separate else n, n)
print(' '.join(map(str, d)))
print(' '.join(map(str, s)))
print(' '.join(map(str, sh)))
)";
  return p.str();
}

TEST(GptIndices, EqualMegatronsOverEpochs) {
  // 40 documents of 1 to 60 tokens; one epoch, two epochs with a long last one, and three with a short last one
  // (shuffled apart).
  std::vector<int32_t> sizes;
  for (int i = 0; i < 40; ++i)
    sizes.push_back(1 + (i * 37) % 60);
  std::vector<int32_t> documents(sizes.size());
  for (size_t i = 0; i < documents.size(); ++i)
    documents[i] = static_cast<int32_t>(i);
  for (int64_t numSamples : {int64_t(0), int64_t(160), int64_t(210)}) {
    std::optional<std::string> out = python(referenceProgram(sizes, 16, 1234, numSamples));
    if (!out)
      GTEST_SKIP() << "needs /usr/bin/python3 with numpy (Debian's python3-numpy) as the reference";
    std::istringstream lines(*out);
    std::string document, sample, shuffle;
    ASSERT_TRUE(std::getline(lines, document) && std::getline(lines, sample) && std::getline(lines, shuffle));
    GptIndexOptions options;
    options.sequenceLength = 16;
    options.seed = 1234;
    options.numSamples = numSamples;
    std::string error;
    std::optional<GptIndices> indices = buildGptIndices(sizes, documents, options, error);
    ASSERT_TRUE(indices) << error;
    std::vector<int64_t> mineDocument(indices->document.begin(), indices->document.end());
    EXPECT_EQ(mineDocument, numbers(document)) << numSamples;
    EXPECT_EQ(indices->sample, numbers(sample)) << numSamples;
    EXPECT_EQ(indices->shuffle, numbers(shuffle)) << numSamples;
  }
}

TEST(GptIndices, SamplesOverlapByTheLabelToken) {
  // Ten documents of 4 tokens, samples of 3 + 1: sample k starts at token 3k of the concatenation, whatever the
  // shuffled order (all documents are alike), and there are (40 - 1) / 3 = 13 of them.
  std::vector<int32_t> sizes(10, 4), documents = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  GptIndexOptions options;
  options.sequenceLength = 3;
  std::string error;
  std::optional<GptIndices> indices = buildGptIndices(sizes, documents, options, error);
  ASSERT_TRUE(indices) << error;
  ASSERT_EQ(indices->numSamples(), 13);
  for (int64_t k = 0; k <= 13; ++k) {
    EXPECT_EQ(indices->sample[static_cast<size_t>(2 * k)], (3 * k) / 4) << k;
    EXPECT_EQ(indices->sample[static_cast<size_t>(2 * k + 1)], (3 * k) % 4) << k;
  }
  std::vector<int64_t> sorted = indices->shuffle;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t k = 0; k < 13; ++k)
    EXPECT_EQ(sorted[static_cast<size_t>(k)], k);
}

TEST(GptIndices, TooFewTokensIsAnError) {
  std::string error;
  GptIndexOptions options;
  options.sequenceLength = 8;
  EXPECT_FALSE(buildGptIndices({3, 4}, {0, 1}, options, error));
  EXPECT_EQ(error, "the split's 2 documents hold 7 tokens, fewer than one sample of 9 needs");
  EXPECT_FALSE(buildGptIndices({3, 4}, {0, 2}, options, error));
  EXPECT_EQ(error, "document 2 is not one of the dataset's 2");
}

TEST(Split, ParsesAndRoundsAsMegatron) {
  std::string error;
  std::vector<double> split = parseSplit("969,30,1", error);
  ASSERT_EQ(split.size(), 3u) << error;
  EXPECT_EQ(splitRange(split, 0, 1000), std::make_pair(int64_t(0), int64_t(969)));
  EXPECT_EQ(splitRange(split, 1, 1000), std::make_pair(int64_t(969), int64_t(999)));
  EXPECT_EQ(splitRange(split, 2, 1000), std::make_pair(int64_t(999), int64_t(1000)));
  // Python's round: 2.5 rounds to 2.
  split = parseSplit("1,1", error);
  EXPECT_EQ(splitRange(split, 0, 5), std::make_pair(int64_t(0), int64_t(2)));
  EXPECT_EQ(splitRange(split, 1, 5), std::make_pair(int64_t(2), int64_t(5)));
  EXPECT_EQ(splitRange(split, 2, 5), std::make_pair(int64_t(0), int64_t(0)));
  EXPECT_TRUE(parseSplit("0,0,0", error).empty());
  EXPECT_EQ(error, "--split '0,0,0' has no positive weight");
  EXPECT_TRUE(parseSplit("1,2,3,4", error).empty());
  EXPECT_TRUE(parseSplit("1..2", error).empty());
  EXPECT_EQ(error, "--split '1..2': '1..2' is not a number");
}

TEST(Blending, FollowsTheLargestError) {
  std::vector<int16_t> dataset;
  std::vector<int64_t> sample;
  buildBlendingIndices({0.3, 0.7}, 10, dataset, sample);
  EXPECT_EQ(dataset, (std::vector<int16_t>{1, 0, 1, 1, 0, 1, 1, 0, 1, 1}));
  EXPECT_EQ(sample, (std::vector<int64_t>{0, 0, 1, 2, 1, 3, 4, 2, 5, 6}));
}

} // namespace

// GptDataset over a real .bin/.idx: every sample is the window of sequence length + 1 tokens that starts where the
// sample index says, in the concatenation of the split's sequences in document-index order.
#include "runtime/data/GptDataset.h"

#include <filesystem>

namespace {

TEST(GptDataset, SamplesAreWindowsOfTheShuffledConcatenation) {
  std::string prefix = (std::filesystem::temp_directory_path() / ("gpt-dataset-" + std::to_string(::getpid()))).string();
  std::string error;
  std::vector<int32_t> lengths;
  {
    std::unique_ptr<IndexedDatasetWriter> writer = IndexedDatasetWriter::create(prefix, DType::UInt16, error);
    ASSERT_TRUE(writer) << error;
    for (int d = 0; d < 30; ++d) {
      std::vector<int32_t> tokens;
      for (int k = 0; k < 1 + (d * 7) % 23; ++k)
        tokens.push_back(1000 * d + k);
      lengths.push_back(static_cast<int32_t>(tokens.size()));
      ASSERT_EQ(writer->addSequence(tokens), "");
      writer->endDocument();
    }
    ASSERT_EQ(writer->finalize(), "");
  }
  std::shared_ptr<const IndexedDataset> data = IndexedDataset::open(prefix, error);
  ASSERT_TRUE(data) << error;
  std::vector<double> split = parseSplit("80,20", error);
  GptIndexOptions options;
  options.sequenceLength = 8;
  options.seed = 7;
  std::unique_ptr<GptDataset> train = GptDataset::build(data, split, 0, options, error);
  ASSERT_TRUE(train) << error;
  const GptIndices &indices = train->gptIndices();
  // The concatenation, and where each position of the document index starts in it.
  std::vector<int32_t> stream;
  std::vector<int64_t> startOf;
  for (int32_t sequence : indices.document) {
    startOf.push_back(static_cast<int64_t>(stream.size()));
    for (int k = 0; k < lengths[static_cast<size_t>(sequence)]; ++k)
      stream.push_back(1000 * sequence + k);
  }
  ASSERT_GT(train->size(), 10);
  std::vector<int32_t> tokens(9);
  for (int64_t i = 0; i < train->size(); ++i) {
    EXPECT_EQ(train->sample(i, tokens.data()), 9);
    int64_t j = indices.shuffle[static_cast<size_t>(i)];
    int64_t at = startOf[static_cast<size_t>(indices.sample[static_cast<size_t>(2 * j)])] +
                 indices.sample[static_cast<size_t>(2 * j + 1)];
    EXPECT_EQ(tokens, std::vector<int32_t>(stream.begin() + at, stream.begin() + at + 9)) << "sample " << i;
  }
  // The train split holds sequences [0, 24) only.
  for (int32_t sequence : indices.document)
    EXPECT_LT(sequence, 24);
  // An empty split is an error naming it.
  EXPECT_FALSE(GptDataset::build(data, parseSplit("1,0,0", error), 1, options, error));
  EXPECT_NE(error.find("the validation split is empty (30 sequences)"), std::string::npos) << error;
  std::filesystem::remove(indexPath(prefix));
  std::filesystem::remove(dataPath(prefix));
}

} // namespace

// The index cache: a second build reads what the first saved, equal to building afresh; a damaged or foreign
// file is rebuilt, never trusted.
#include "runtime/data/IndexCache.h"

#include <fstream>

namespace {

TEST(IndexCache, ReusedWhenTheSameAndRebuiltWhenDamaged) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("index-cache-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string prefix = (dir / "corpus").string(), error;
  {
    std::unique_ptr<IndexedDatasetWriter> writer = IndexedDatasetWriter::create(prefix, DType::UInt16, error);
    ASSERT_TRUE(writer) << error;
    for (int d = 0; d < 20; ++d) {
      ASSERT_EQ(writer->addSequence(std::vector<int32_t>(static_cast<size_t>(3 + d % 9), d)), "");
      writer->endDocument();
    }
    ASSERT_EQ(writer->finalize(), "");
  }
  std::shared_ptr<const IndexedDataset> data = IndexedDataset::open(prefix, error);
  ASSERT_TRUE(data) << error;
  std::vector<double> split = parseSplit("1", error);
  GptIndexOptions options;
  options.sequenceLength = 5;
  options.numSamples = 40; // several epochs
  std::string cache = (dir / "cache").string();
  std::unique_ptr<GptDataset> fresh = GptDataset::build(data, split, 0, options, error);
  std::unique_ptr<GptDataset> first = GptDataset::build(data, split, 0, options, error, cache);
  std::unique_ptr<GptDataset> second = GptDataset::build(data, split, 0, options, error, cache);
  ASSERT_TRUE(fresh && first && second) << error;
  EXPECT_EQ(first->cacheNote(), "saved to " + cache);
  EXPECT_EQ(second->cacheNote(), "read from " + cache);
  for (const GptDataset *d : {first.get(), second.get()}) {
    EXPECT_EQ(d->gptIndices().document, fresh->gptIndices().document);
    EXPECT_EQ(d->gptIndices().sample, fresh->gptIndices().sample);
    EXPECT_EQ(d->gptIndices().shuffle, fresh->gptIndices().shuffle);
  }
  // Other options: another file, not this one.
  options.seed = 99;
  std::unique_ptr<GptDataset> other = GptDataset::build(data, split, 0, options, error, cache);
  ASSERT_TRUE(other) << error;
  EXPECT_EQ(other->cacheNote(), "saved to " + cache);
  options.seed = 1234;
  // Damage the first file: it is rebuilt (and saved again), with the same indices.
  for (const fs::directory_entry &entry : fs::directory_iterator(cache)) {
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-3, std::ios::end);
    file.write("\xff\xff\xff", 3);
  }
  std::unique_ptr<GptDataset> repaired = GptDataset::build(data, split, 0, options, error, cache);
  ASSERT_TRUE(repaired) << error;
  EXPECT_EQ(repaired->cacheNote(), "saved to " + cache);
  EXPECT_EQ(repaired->gptIndices().shuffle, fresh->gptIndices().shuffle);
  std::string why;
  EXPECT_FALSE(readIndexCache((dir / "missing.bin").string(), "x", why));
  EXPECT_EQ(why, "no cache yet");
  fs::remove_all(dir);
}

} // namespace
