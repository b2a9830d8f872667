//===- IndexedDatasetTest.cpp - Megatron's .bin/.idx: bytes, validation, merge --===//
//
// The expected bytes are built here from the format as Megatron-Core's indexed_dataset.py defines it (magic,
// little-endian fields put byte by byte with shifts), never from the writer, and compared with what the writer
// produces. Every corruption the reader must reject is made from a valid file and checked for its message.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/IndexedDataset.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <sys/stat.h>
#include <unistd.h>

using namespace megatron::data;

namespace {

using Bytes = std::vector<uint8_t>;

/// Little-endian integers put byte by byte.
void putLE(Bytes &out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

/// An .idx as the format defines it, from its parts; the pointers are given, not derived.
Bytes makeIndex(uint8_t code, const std::vector<int32_t> &lengths, const std::vector<int64_t> &pointers,
                const std::vector<int64_t> &documents, uint64_t version = 1) {
  Bytes out = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
  putLE(out, version, 8);
  out.push_back(code);
  putLE(out, lengths.size(), 8);
  putLE(out, documents.size(), 8);
  for (int32_t length : lengths)
    putLE(out, static_cast<uint32_t>(length), 4);
  for (int64_t pointer : pointers)
    putLE(out, static_cast<uint64_t>(pointer), 8);
  for (int64_t document : documents)
    putLE(out, static_cast<uint64_t>(document), 8);
  return out;
}

Bytes u16(std::initializer_list<uint16_t> values) {
  Bytes out;
  for (uint16_t v : values)
    putLE(out, v, 2);
  return out;
}

class TempDir {
public:
  TempDir() {
    char pattern[] = "/tmp/indexed-dataset-test.XXXXXX";
    char *made = ::mkdtemp(pattern);
    EXPECT_NE(made, nullptr);
    path_ = made ? made : "/tmp";
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string operator/(const std::string &name) const { return path_ + "/" + name; }
  const std::string &path() const { return path_; }
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    if (DIR *dir = ::opendir(path_.c_str())) {
      while (struct dirent *entry = ::readdir(dir))
        if (std::string(entry->d_name) != "." && std::string(entry->d_name) != "..")
          names.push_back(entry->d_name);
      ::closedir(dir);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

private:
  std::string path_;
};

Bytes readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeFile(const std::string &path, const Bytes &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

/// The example dataset used throughout, in uint16: document 0 is one sequence [1 2 3]; document 1 two sequences
/// [4] [5 6]; document 2 is empty; document 3 is [65535].
void writeExample(IndexedDatasetWriter &writer) {
  EXPECT_EQ(writer.addDocument(std::vector<int32_t>{1, 2, 3}, {3}), "");
  EXPECT_EQ(writer.addSequence(std::vector<int32_t>{4}), "");
  EXPECT_EQ(writer.addSequence(std::vector<int32_t>{5, 6}), "");
  writer.endDocument();
  writer.endDocument();
  EXPECT_EQ(writer.addDocument(std::vector<int64_t>{65535}, {1}), "");
}

const Bytes kExampleBin = u16({1, 2, 3, 4, 5, 6, 65535});

// The example's .idx written out byte by byte.
const Bytes kExampleIdx = {
    'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0, // magic
    1, 0, 0, 0, 0, 0, 0, 0,                  // version 1
    8,                                       // dtype code 8: uint16
    4, 0, 0, 0, 0, 0, 0, 0,                  // 4 sequences
    5, 0, 0, 0, 0, 0, 0, 0,                  // 5 document indices
    3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, // lengths 3 1 2 1
    0, 0, 0, 0, 0, 0, 0, 0,                  // pointers (bytes): 0
    6, 0, 0, 0, 0, 0, 0, 0,                  //                   6
    8, 0, 0, 0, 0, 0, 0, 0,                  //                   8
    12, 0, 0, 0, 0, 0, 0, 0,                 //                   12
    0, 0, 0, 0, 0, 0, 0, 0,                  // document indices: 0
    1, 0, 0, 0, 0, 0, 0, 0,                  //                   1
    3, 0, 0, 0, 0, 0, 0, 0,                  //                   3
    3, 0, 0, 0, 0, 0, 0, 0,                  //                   3 (document 2 is empty)
    4, 0, 0, 0, 0, 0, 0, 0,                  //                   4
};

std::string writeDataset(const std::string &prefix, DType dtype,
                         const std::vector<std::pair<std::vector<int64_t>, std::vector<int32_t>>> &documents) {
  std::string error;
  auto writer = IndexedDatasetWriter::create(prefix, dtype, error);
  if (!writer)
    return error;
  for (const auto &[tokens, lengths] : documents)
    if (std::string failure = writer->addDocument(tokens, lengths); !failure.empty())
      return failure;
  return writer->finalize();
}

} // namespace

TEST(IndexedDatasetFormat, DTypeCodesAreMegatrons) {
  EXPECT_EQ(static_cast<int>(DType::UInt8), 1);
  EXPECT_EQ(static_cast<int>(DType::Int8), 2);
  EXPECT_EQ(static_cast<int>(DType::Int16), 3);
  EXPECT_EQ(static_cast<int>(DType::Int32), 4);
  EXPECT_EQ(static_cast<int>(DType::Int64), 5);
  EXPECT_EQ(static_cast<int>(DType::Float64), 6);
  EXPECT_EQ(static_cast<int>(DType::Float32), 7);
  EXPECT_EQ(static_cast<int>(DType::UInt16), 8);
  EXPECT_FALSE(isDTypeCode(0));
  EXPECT_FALSE(isDTypeCode(9));
  EXPECT_EQ(dtypeSize(DType::UInt16), 2u);
  EXPECT_EQ(dtypeSize(DType::Float64), 8u);
  EXPECT_STREQ(dtypeName(DType::UInt16), "uint16");
}

TEST(IndexedDatasetFormat, OptimalDTypeAsMegatron) {
  EXPECT_EQ(optimalDType(50257), DType::UInt16); // GPT-2
  EXPECT_EQ(optimalDType(65499), DType::UInt16);
  EXPECT_EQ(optimalDType(65500), DType::Int32); // not 65536: Megatron's threshold
  EXPECT_EQ(optimalDType(128256), DType::Int32);
  EXPECT_EQ(optimalDType(std::nullopt), DType::Int32);
}

TEST(IndexedDatasetFormat, IndexFileSize) {
  EXPECT_EQ(indexFileSize(0, 1), 42u);
  EXPECT_EQ(indexFileSize(4, 5), 34u + 48 + 40);
  EXPECT_FALSE(indexFileSize(uint64_t(1) << 62, 1).has_value());
  EXPECT_FALSE(indexFileSize(1, uint64_t(1) << 61).has_value());
}

TEST(IndexedDatasetWriter, ExampleBytesAreTheFormats) {
  TempDir dir;
  std::string error;
  auto writer = IndexedDatasetWriter::create(dir / "example", DType::UInt16, error);
  ASSERT_TRUE(writer) << error;
  writeExample(*writer);
  EXPECT_EQ(writer->sequenceCount(), 4u);
  EXPECT_EQ(writer->documentCount(), 4u);
  ASSERT_EQ(writer->finalize(), "");
  EXPECT_EQ(readFile(dir / "example.bin"), kExampleBin);
  EXPECT_EQ(readFile(dir / "example.idx"), kExampleIdx);
  EXPECT_EQ(kExampleIdx, makeIndex(8, {3, 1, 2, 1}, {0, 6, 8, 12}, {0, 1, 3, 3, 4}));
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"example.bin", "example.idx"})); // no temporaries left
}

TEST(IndexedDatasetWriter, Int32AndInt64Bytes) {
  TempDir dir;
  ASSERT_EQ(writeDataset(dir / "a", DType::Int32, {{{-1, 70000, 2147483647}, {2, 1}}}), "");
  Bytes bin;
  for (int64_t v : {-1, 70000, 2147483647})
    putLE(bin, static_cast<uint32_t>(v), 4);
  EXPECT_EQ(readFile(dir / "a.bin"), bin);
  EXPECT_EQ(readFile(dir / "a.idx"), makeIndex(4, {2, 1}, {0, 8}, {0, 2}));

  ASSERT_EQ(writeDataset(dir / "b", DType::Int64, {{{int64_t(1) << 40}, {1}}}), "");
  Bytes bin64;
  putLE(bin64, uint64_t(1) << 40, 8);
  EXPECT_EQ(readFile(dir / "b.bin"), bin64);
  EXPECT_EQ(readFile(dir / "b.idx"), makeIndex(5, {1}, {0}, {0, 1}));
}

TEST(IndexedDatasetWriter, EveryDTypeRoundTrips) {
  TempDir dir;
  for (uint8_t code = 1; code <= 8; ++code) {
    DType dtype = static_cast<DType>(code);
    std::string prefix = dir / ("d" + std::to_string(code));
    ASSERT_EQ(writeDataset(prefix, dtype, {{{0, 1, 100}, {3}}, {{7}, {1}}}), "") << dtypeName(dtype);
    size_t size = dtypeSize(dtype);
    EXPECT_EQ(readFile(prefix + ".bin").size(), 4 * size);
    EXPECT_EQ(readFile(prefix + ".idx"), makeIndex(code, {3, 1}, {0, int64_t(3 * size)}, {0, 1, 2}));
    std::string error;
    auto dataset = IndexedDataset::open(prefix, error);
    ASSERT_TRUE(dataset) << error;
    EXPECT_EQ(dataset->dtype(), dtype);
    EXPECT_EQ(dataset->sequenceTokens(0), (std::vector<int64_t>{0, 1, 100}));
    EXPECT_EQ(dataset->token(1, 0), 7);
  }
}

TEST(IndexedDatasetWriter, EmptyDataset) {
  TempDir dir;
  ASSERT_EQ(writeDataset(dir / "empty", DType::UInt16, {}), "");
  EXPECT_EQ(readFile(dir / "empty.bin"), Bytes{});
  EXPECT_EQ(readFile(dir / "empty.idx"), makeIndex(8, {}, {}, {0}));
  EXPECT_EQ(readFile(dir / "empty.idx").size(), 42u);
  std::string error;
  auto dataset = IndexedDataset::open(dir / "empty", error);
  ASSERT_TRUE(dataset) << error;
  EXPECT_EQ(dataset->sequenceCount(), 0u);
  EXPECT_EQ(dataset->documentCount(), 0u);
  EXPECT_EQ(dataset->tokenCount(), 0u);
}

TEST(IndexedDatasetWriter, OnlyEmptyDocuments) {
  // Megatron's preprocess adds an empty document (no sequence) for an empty text: a repeated document index.
  TempDir dir;
  ASSERT_EQ(writeDataset(dir / "e", DType::UInt16, {{{}, {}}, {{}, {}}}), "");
  EXPECT_EQ(readFile(dir / "e.idx"), makeIndex(8, {}, {}, {0, 0, 0}));
  std::string error;
  auto dataset = IndexedDataset::open(dir / "e", error);
  ASSERT_TRUE(dataset) << error;
  EXPECT_EQ(dataset->documentCount(), 2u);
}

TEST(IndexedDatasetWriter, TokensMustFitTheDType) {
  TempDir dir;
  std::string error;
  auto writer = IndexedDatasetWriter::create(dir / "x", DType::UInt16, error);
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->addSequence(std::vector<int32_t>{1, 65536}), dir / "x.bin" + ": token 65536 does not fit the dataset's dtype uint16");
  // The writer is dead after an error, and finalize says why; nothing was written.
  EXPECT_NE(writer->addSequence(std::vector<int32_t>{1}), "");
  EXPECT_NE(writer->finalize().find("65536"), std::string::npos);
  EXPECT_EQ(dir.list(), std::vector<std::string>{});

  writer = IndexedDatasetWriter::create(dir / "y", DType::UInt16, error);
  EXPECT_NE(writer->addSequence(std::vector<int32_t>{-1}).find("token -1 does not fit"), std::string::npos);
  writer = IndexedDatasetWriter::create(dir / "z", DType::Int8, error);
  EXPECT_NE(writer->addSequence(std::vector<int32_t>{-129}).find("token -129"), std::string::npos);
  writer = IndexedDatasetWriter::create(dir / "f", DType::Float32, error);
  EXPECT_NE(writer->addSequence(std::vector<int64_t>{16777217}).find("float32"), std::string::npos);
  writer.reset();
  EXPECT_EQ(dir.list(), std::vector<std::string>{});
}

TEST(IndexedDatasetWriter, DocumentLengthsMustSumToItsTokens) {
  TempDir dir;
  std::string error;
  auto writer = IndexedDatasetWriter::create(dir / "x", DType::UInt16, error);
  EXPECT_NE(writer->addDocument(std::vector<int32_t>{1, 2, 3}, {1, 1}).find("sum to 2, but it has 3 tokens"),
            std::string::npos);
}

TEST(IndexedDatasetWriter, TemporariesUntilFinalize) {
  TempDir dir;
  // An existing dataset stays as it was until finalize() replaces it, and stays when the writer is abandoned.
  ASSERT_EQ(writeDataset(dir / "d", DType::UInt16, {{{9}, {1}}}), "");
  Bytes oldIdx = readFile(dir / "d.idx");
  {
    std::string error;
    auto writer = IndexedDatasetWriter::create(dir / "d", DType::UInt16, error);
    writeExample(*writer);
    EXPECT_EQ(readFile(dir / "d.idx"), oldIdx);
    EXPECT_EQ(dir.list().size(), 3u); // d.bin, d.idx, d.bin.tmp.XXXXXX
  }
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"d.bin", "d.idx"}));
  EXPECT_EQ(readFile(dir / "d.idx"), oldIdx);
  std::string error;
  auto writer = IndexedDatasetWriter::create(dir / "d", DType::UInt16, error);
  writeExample(*writer);
  ASSERT_EQ(writer->finalize(), "");
  EXPECT_EQ(readFile(dir / "d.idx"), kExampleIdx);
  EXPECT_EQ(readFile(dir / "d.bin"), kExampleBin);
  EXPECT_NE(writer->finalize(), ""); // only once
  writer.reset();
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"d.bin", "d.idx"}));
}

TEST(IndexedDatasetWriter, UnwritableDirectory) {
  std::string error;
  EXPECT_FALSE(IndexedDatasetWriter::create("/nonexistent-directory/x", DType::UInt16, error));
  EXPECT_NE(error.find("/nonexistent-directory/x.bin"), std::string::npos) << error;
}

TEST(IndexedDatasetWriter, LargeSequencesBypassTheBuffer) {
  TempDir dir;
  std::vector<int32_t> big(3 << 20), small{1, 2, 3};
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<int32_t>((i * 2654435761u) % 50257);
  std::string error;
  auto writer = IndexedDatasetWriter::create(dir / "big", DType::UInt16, error);
  ASSERT_EQ(writer->addDocument(small, {3}), "");
  ASSERT_EQ(writer->addDocument(big, {static_cast<int32_t>(big.size())}), "");
  ASSERT_EQ(writer->addDocument(small, {3}), "");
  ASSERT_EQ(writer->finalize(), "");
  auto dataset = IndexedDataset::open(dir / "big", error);
  ASSERT_TRUE(dataset) << error;
  ASSERT_EQ(dataset->sequenceCount(), 3u);
  const uint16_t *tokens = dataset->sequenceAs<uint16_t>(1);
  ASSERT_NE(tokens, nullptr);
  for (size_t i = 0; i < big.size(); ++i)
    ASSERT_EQ(tokens[i], big[i]) << i;
  EXPECT_EQ(dataset->sequenceTokens(2), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(dataset->sequencePointer(2), int64_t(2 * (3 + big.size())));
}

TEST(IndexedDatasetReader, ReadsTheHandWrittenExample) {
  TempDir dir;
  writeFile(dir / "x.idx", kExampleIdx);
  writeFile(dir / "x.bin", kExampleBin);
  std::string error;
  auto dataset = IndexedDataset::open(dir / "x", error);
  ASSERT_TRUE(dataset) << error;
  EXPECT_EQ(dataset->dtype(), DType::UInt16);
  EXPECT_EQ(dataset->sequenceCount(), 4u);
  EXPECT_EQ(dataset->documentCount(), 4u);
  EXPECT_EQ(dataset->documentIndexCount(), 5u);
  EXPECT_EQ(dataset->tokenCount(), 7u);
  EXPECT_EQ(dataset->sequenceLength(2), 2);
  EXPECT_EQ(dataset->sequencePointer(3), 12);
  EXPECT_EQ(dataset->documentIndex(3), 3);
  EXPECT_EQ(dataset->sequenceTokens(0), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(dataset->sequenceTokens(3), (std::vector<int64_t>{65535}));
  ASSERT_NE(dataset->sequenceAs<uint16_t>(2), nullptr);
  EXPECT_EQ(dataset->sequenceAs<uint16_t>(2)[1], 6);
  EXPECT_EQ(dataset->sequenceAs<int16_t>(2), nullptr); // wrong signedness
  EXPECT_EQ(dataset->sequenceAs<int32_t>(2), nullptr); // wrong size
}

namespace {
/// Writes `idx` and `bin` as prefix `dir/c` and returns the reader's error.
std::string openError(const TempDir &dir, const Bytes &idx, const Bytes &bin) {
  writeFile(dir / "c.idx", idx);
  writeFile(dir / "c.bin", bin);
  std::string error;
  auto dataset = IndexedDataset::open(dir / "c", error);
  EXPECT_FALSE(dataset) << "accepted a corrupt dataset";
  EXPECT_EQ(error, IndexedDataset::validateIndex(idx.data(), idx.size(), bin.size(), dir / "c.idx"));
  return error;
}

Bytes with(Bytes bytes, size_t at, std::initializer_list<uint8_t> values) {
  for (uint8_t v : values)
    bytes.at(at++) = v;
  return bytes;
}
} // namespace

#define EXPECT_REJECTED(idx, bin, message)                                                                        \
  do {                                                                                                            \
    std::string error = openError(dir, idx, bin);                                                                 \
    EXPECT_EQ(error.rfind(dir / "c.idx: ", 0), 0u) << error;                                                      \
    EXPECT_NE(error.find(message), std::string::npos) << error;                                                   \
  } while (0)

TEST(IndexedDatasetReader, RejectsEveryCorruption) {
  TempDir dir;
  const Bytes &idx = kExampleIdx;
  const Bytes &bin = kExampleBin;
  ASSERT_EQ(IndexedDataset::validateIndex(idx.data(), idx.size(), bin.size(), "x"), "");

  // Header.
  EXPECT_REJECTED(Bytes{}, bin, "truncated: 0 bytes, shorter than the 9-byte magic");
  EXPECT_REJECTED(Bytes(idx.begin(), idx.begin() + 5), bin, "shorter than the 9-byte magic");
  EXPECT_REJECTED(with(idx, 0, {'T', 'N', 'T'}), bin, "the magic is b\"TNTDIDX\\x00\\x00\", expected b\"MMIDIDX\\x00\\x00\"");
  EXPECT_REJECTED(with(idx, 8, {1}), bin, "not a Megatron indexed dataset index");
  EXPECT_REJECTED(Bytes(idx.begin(), idx.begin() + 12), bin, "truncated inside the version field");
  EXPECT_REJECTED(with(idx, 9, {2}), bin, "unsupported version 2");
  EXPECT_REJECTED(with(idx, 16, {1}), bin, "unsupported version 72057594037927937");
  EXPECT_REJECTED(Bytes(idx.begin(), idx.begin() + 17), bin, "truncated before the dtype code");
  EXPECT_REJECTED(with(idx, 17, {0}), bin, "unknown dtype code 0");
  EXPECT_REJECTED(with(idx, 17, {9}), bin, "unknown dtype code 9");
  EXPECT_REJECTED(Bytes(idx.begin(), idx.begin() + 30), bin, "truncated inside the header: 30 bytes");

  // Counts against the file length.
  EXPECT_REJECTED(Bytes(idx.begin(), idx.end() - 1), bin,
                  "truncated or its counts are wrong: 4 sequences and 5 document indices need 122 bytes");
  EXPECT_REJECTED(Bytes(idx.begin(), idx.begin() + 34), bin, "the file has 34");
  Bytes longer = idx;
  longer.push_back(0);
  EXPECT_REJECTED(longer, bin, "has trailing bytes or its counts are wrong");
  EXPECT_REJECTED(with(idx, 18, {5}), bin, "5 sequences and 5 document indices need 134 bytes");
  EXPECT_REJECTED(with(idx, 26, {4}), bin, "has trailing bytes");
  EXPECT_REJECTED(with(idx, 25, {0x80}), bin, "need more than 2^64 bytes");
  EXPECT_REJECTED(with(idx, 33, {0x40}), bin, "need more than 2^64 bytes");
  EXPECT_REJECTED(makeIndex(8, {}, {}, {}), Bytes{}, "no document indices");

  // Lengths and pointers.
  EXPECT_REJECTED(with(idx, 34 + 4, {0xff, 0xff, 0xff, 0xff}), bin, "sequence 1 has a negative length -1");
  EXPECT_REJECTED(with(idx, 50 + 8 * 2 + 7, {0x80}), bin, "sequence 2 has a negative pointer");
  EXPECT_REJECTED(with(idx, 50 + 8 * 3, {13}), bin,
                  "sequence 3 (1 tokens at byte 13) runs past the end of the .bin file (14 bytes)");
  EXPECT_REJECTED(with(idx, 50 + 8 * 3, {0, 1}), bin, "runs past the end of the .bin file");
  EXPECT_REJECTED(with(idx, 34 + 12, {2}), bin, "sequence 3 (2 tokens at byte 12) runs past the end");
  EXPECT_REJECTED(with(idx, 34, {0xff, 0xff, 0xff, 0x7f}), bin, "sequence 0 (2147483647 tokens at byte 0)");
  EXPECT_REJECTED(with(idx, 50 + 8 * 1, {4}), bin, "sequence 1 starts at byte 4, expected 6");
  EXPECT_REJECTED(with(idx, 50 + 8 * 0, {2}), bin, "sequence 0 starts at byte 2, expected 0");
  // The .bin against the lengths: truncated, longer, or an odd byte count.
  EXPECT_REJECTED(idx, Bytes(bin.begin(), bin.end() - 2), "runs past the end of the .bin file (12 bytes)");
  EXPECT_REJECTED(idx, Bytes{}, "runs past the end of the .bin file (0 bytes)");
  Bytes longerBin = bin;
  longerBin.push_back(0);
  EXPECT_REJECTED(idx, longerBin, "the .bin file has 15 bytes but the sequences hold 14 (7 uint16 tokens)");

  // Document indices.
  size_t documents = 50 + 8 * 4;
  EXPECT_REJECTED(with(idx, documents, {1}), bin, "document index 0 is 1, expected 0");
  EXPECT_REJECTED(with(idx, documents + 8 * 2, {0}), bin, "document index 2 is 0, less than the one before (1)");
  EXPECT_REJECTED(with(idx, documents + 8 * 3, {5}), bin, "document index 3 is 5, beyond the 4 sequences");
  EXPECT_REJECTED(with(idx, documents + 8 * 4, {3}), bin, "the last document index is 3, expected the sequence count 4");
  EXPECT_REJECTED(with(idx, documents + 8 * 4 + 7, {0xff}), bin, "document index 4 is -");
}

TEST(IndexedDatasetReader, MissingFiles) {
  TempDir dir;
  std::string error;
  EXPECT_FALSE(IndexedDataset::open(dir / "none", error));
  EXPECT_EQ(error, "cannot open '" + (dir / "none.idx") + "': No such file or directory");
  writeFile(dir / "half.idx", kExampleIdx);
  EXPECT_FALSE(IndexedDataset::open(dir / "half", error));
  EXPECT_EQ(error, "cannot open '" + (dir / "half.bin") + "': No such file or directory");
  ::mkdir((dir / "dir.idx").c_str(), 0700);
  EXPECT_FALSE(IndexedDataset::open(dir / "dir", error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

TEST(IndexedDatasetReader, ValidateNeverReadsOutOfBounds) {
  // Every prefix of a valid index is rejected without reading past its end (ASan builds check the reads).
  for (size_t n = 0; n < kExampleIdx.size(); ++n) {
    std::vector<uint8_t> copy(kExampleIdx.begin(), kExampleIdx.begin() + n);
    std::unique_ptr<uint8_t[]> exact(new uint8_t[n ? n : 1]);
    std::copy(copy.begin(), copy.end(), exact.get());
    EXPECT_NE(IndexedDataset::validateIndex(exact.get(), n, kExampleBin.size(), "p"), "") << n;
  }
}

TEST(IndexedDatasetMerge, ConcatenatesInOrder) {
  TempDir dir;
  ASSERT_EQ(writeDataset(dir / "a", DType::UInt16, {{{1, 2}, {2}}, {{}, {}}}), "");
  ASSERT_EQ(writeDataset(dir / "b", DType::UInt16, {}), "");
  ASSERT_EQ(writeDataset(dir / "c", DType::UInt16, {{{3, 4, 5}, {1, 2}}, {{6}, {1}}}), "");
  ASSERT_EQ(mergeIndexedDatasets({dir / "a", dir / "b", dir / "c"}, dir / "m"), "");
  // a: lengths [2], documents [0 1 1]; b: [0]; c: lengths [1 2 1], documents [0 2 3].
  EXPECT_EQ(readFile(dir / "m.idx"), makeIndex(8, {2, 1, 2, 1}, {0, 4, 6, 10}, {0, 1, 1, 3, 4}));
  EXPECT_EQ(readFile(dir / "m.bin"), u16({1, 2, 3, 4, 5, 6}));
  // Order matters.
  ASSERT_EQ(mergeIndexedDatasets({dir / "c", dir / "a"}, dir / "n"), "");
  EXPECT_EQ(readFile(dir / "n.idx"), makeIndex(8, {1, 2, 1, 2}, {0, 2, 6, 8}, {0, 2, 3, 4, 4}));
  EXPECT_EQ(readFile(dir / "n.bin"), u16({3, 4, 5, 6, 1, 2}));
  // One input: a copy.
  ASSERT_EQ(mergeIndexedDatasets({dir / "a"}, dir / "one"), "");
  EXPECT_EQ(readFile(dir / "one.idx"), readFile(dir / "a.idx"));
  EXPECT_EQ(readFile(dir / "one.bin"), readFile(dir / "a.bin"));
}

TEST(IndexedDatasetMerge, MergingWhatWasWrittenInPartsEqualsWritingItWhole) {
  TempDir dir;
  std::vector<std::pair<std::vector<int64_t>, std::vector<int32_t>>> documents;
  for (int d = 0; d < 50; ++d) {
    std::vector<int64_t> tokens;
    std::vector<int32_t> lengths;
    for (int s = 0; s < d % 4; ++s) {
      lengths.push_back(1 + (d * 7 + s) % 5);
      for (int k = 0; k < lengths.back(); ++k)
        tokens.push_back((d * 131 + s * 17 + k) % 50257);
    }
    documents.push_back({tokens, lengths});
  }
  ASSERT_EQ(writeDataset(dir / "whole", DType::UInt16, documents), "");
  ASSERT_EQ(writeDataset(dir / "p0", DType::UInt16, {documents.begin(), documents.begin() + 17}), "");
  ASSERT_EQ(writeDataset(dir / "p1", DType::UInt16, {documents.begin() + 17, documents.begin() + 40}), "");
  ASSERT_EQ(writeDataset(dir / "p2", DType::UInt16, {documents.begin() + 40, documents.end()}), "");
  ASSERT_EQ(mergeIndexedDatasets({dir / "p0", dir / "p1", dir / "p2"}, dir / "merged"), "");
  EXPECT_EQ(readFile(dir / "merged.idx"), readFile(dir / "whole.idx"));
  EXPECT_EQ(readFile(dir / "merged.bin"), readFile(dir / "whole.bin"));
}

TEST(IndexedDatasetMerge, Errors) {
  TempDir dir;
  ASSERT_EQ(writeDataset(dir / "a", DType::UInt16, {{{1}, {1}}}), "");
  ASSERT_EQ(writeDataset(dir / "w", DType::Int32, {{{1}, {1}}}), "");
  EXPECT_EQ(mergeIndexedDatasets({}, dir / "m"), "no datasets to merge");
  std::string error = mergeIndexedDatasets({dir / "a", dir / "w"}, dir / "m");
  EXPECT_NE(error.find("w.idx: its dtype is int32, but " + (dir / "a.idx") + "'s is uint16"), std::string::npos)
      << error;
  writeFile(dir / "bad.idx", with(kExampleIdx, 17, {0}));
  writeFile(dir / "bad.bin", kExampleBin);
  error = mergeIndexedDatasets({dir / "a", dir / "bad"}, dir / "m");
  EXPECT_NE(error.find("bad.idx: unknown dtype code 0"), std::string::npos) << error;
  error = mergeIndexedDatasets({dir / "a", dir / "missing"}, dir / "m");
  EXPECT_NE(error.find("missing.idx"), std::string::npos) << error;
  // Nothing was written for the failed merges.
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"a.bin", "a.idx", "bad.bin", "bad.idx", "w.bin", "w.idx"}));
}

TEST(IndexedDatasetMerge, PrefixesInADirectory) {
  TempDir dir;
  for (const char *name : {"b_text_document", "a.x", "c"})
    ASSERT_EQ(writeDataset(dir / name, DType::UInt16, {{{1}, {1}}}), "");
  writeFile(dir / "README.md", {'h', 'i'});
  ::mkdir((dir / "sub.idx").c_str(), 0700);
  std::string error;
  EXPECT_EQ(datasetPrefixesIn(dir.path(), error),
            (std::vector<std::string>{dir / "a.x", dir / "b_text_document", dir / "c"}));
  EXPECT_EQ(error, "");
  EXPECT_EQ(datasetPrefixesIn(dir.path() + "/", error)[0], dir / "a.x");

  ::unlink((dir / "c.bin").c_str());
  EXPECT_TRUE(datasetPrefixesIn(dir.path(), error).empty());
  EXPECT_EQ(error, "no .bin file for " + (dir / "c"));
  EXPECT_TRUE(datasetPrefixesIn(dir / "nonexistent", error).empty());
  EXPECT_NE(error.find("cannot list"), std::string::npos);
}
