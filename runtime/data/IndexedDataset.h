//===- IndexedDataset.h - Megatron-Core's indexed dataset (.bin/.idx) -*- C++ -*-===//
//
// The on-disk format of Megatron-Core's IndexedDataset (megatron/core/datasets/indexed_dataset.py), which
// Megatron-LM's tools/preprocess_data.py writes and its GPT/BERT/T5 datasets read: a prefix names two files.
//
//   <prefix>.bin   the tokens of every sequence, back to back, each as a little-endian value of the dtype
//   <prefix>.idx   little-endian, unpadded:
//                    offset 0   9 bytes   magic "MMIDIDX\0\0"
//                    offset 9   u64       version, 1
//                    offset 17  u8        dtype code (DType below: Megatron's numbering)
//                    offset 18  u64       S, the number of sequences
//                    offset 26  u64       D, the number of document indices (documents + 1)
//                    offset 34  i32 x S   sequence lengths, in tokens
//                               i64 x S   sequence pointers: byte offset of each sequence in the .bin
//                               i64 x D   document indices: document d is sequences [idx[d], idx[d+1])
//
// A document is one or more sequences (sentences when Megatron splits sentences, otherwise one per document);
// the document indices start at 0, never decrease and end at S. A document with no sequence (an empty text) is a
// repeated index. The pointers are the running sum of length x itemsize, so the .bin holds exactly the tokens.
// See docs/datasets.md.
//
// Plain C++17, no MLIR or LLVM. Little-endian hosts only (every machine Megatron runs on).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_DATA_INDEXEDDATASET_H
#define MEGATRON_RUNTIME_DATA_INDEXEDDATASET_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace megatron::data {

/// Megatron-Core's DType enum: the codes stored in byte 17 of the .idx.
enum class DType : uint8_t {
  UInt8 = 1,
  Int8 = 2,
  Int16 = 3,
  Int32 = 4,
  Int64 = 5,
  Float64 = 6,
  Float32 = 7,
  UInt16 = 8,
};

/// Whether `code` is one of the codes above.
bool isDTypeCode(uint8_t code);
/// Bytes per element: 1, 2, 4 or 8.
size_t dtypeSize(DType dtype);
/// NumPy's name: "uint16", "int32", ...
const char *dtypeName(DType dtype);
/// Megatron's DType.optimal_dtype: uint16 for a vocabulary of fewer than 65500 tokens, int32 otherwise (and when
/// the size is unknown).
DType optimalDType(std::optional<int64_t> vocabularySize);

/// The .idx header: 9 bytes of magic, the version, the dtype code, the two counts.
inline constexpr char kIndexMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
inline constexpr uint64_t kIndexVersion = 1;
inline constexpr size_t kIndexHeaderSize = 34;

/// `prefix + ".idx"` and `prefix + ".bin"`, as Megatron's get_idx_path and get_bin_path.
std::string indexPath(const std::string &prefix);
std::string dataPath(const std::string &prefix);

/// The exact size of a well-formed .idx of `sequences` sequences and `documentIndices` document indices; nullopt
/// when it does not fit in 64 bits.
std::optional<uint64_t> indexFileSize(uint64_t sequences, uint64_t documentIndices);

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

/// A read-only memory map of a whole file (no map for an empty file).
class MappedFile {
public:
  MappedFile() = default;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  MappedFile(MappedFile &&other) noexcept;
  MappedFile &operator=(MappedFile &&other) noexcept;
  ~MappedFile();

  /// Maps `path`; on failure returns false and sets `error` to a message naming the file.
  bool open(const std::string &path, std::string &error);
  const uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }

private:
  void reset();
  const uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
};

/// A validated, memory-mapped indexed dataset. open() checks everything before anything is used: the magic, the
/// version, the dtype code, the counts against the .idx length, every sequence length (>= 0), every pointer (a
/// multiple of the itemsize, the running sum of the lengths, inside the .bin), the .bin length (exactly the
/// tokens), and the document indices (starting at 0, never decreasing, ending at the sequence count). Any
/// violation is a message naming the file and the problem; after a successful open() no access can leave the
/// maps. Tokens are read in place (zero copy); the .idx arrays are unaligned in the file and read with memcpy.
class IndexedDataset {
public:
  /// Opens `<prefix>.idx` and `<prefix>.bin`. Returns null and sets `error` on any problem.
  static std::unique_ptr<IndexedDataset> open(const std::string &prefix, std::string &error);

  /// Validates an .idx already in memory against a .bin of `binSize` bytes (what open() does after mapping;
  /// the fuzz target calls it). `name` is the file named in messages. Returns an empty string when valid.
  static std::string validateIndex(const uint8_t *idx, uint64_t idxSize, uint64_t binSize, const std::string &name);

  const std::string &prefix() const { return prefix_; }
  DType dtype() const { return dtype_; }
  size_t itemSize() const { return dtypeSize(dtype_); }

  /// S: the number of sequences.
  uint64_t sequenceCount() const { return sequenceCount_; }
  /// The number of documents: one less than the number of document indices.
  uint64_t documentCount() const { return documentIndexCount_ - 1; }
  /// D: the number of document indices as stored (documents + 1).
  uint64_t documentIndexCount() const { return documentIndexCount_; }
  /// The total number of tokens (the .bin's size over the itemsize).
  uint64_t tokenCount() const { return bin_.size() / itemSize(); }

  int32_t sequenceLength(uint64_t i) const { return load<int32_t>(kIndexHeaderSize + 4 * i); }
  int64_t sequencePointer(uint64_t i) const { return load<int64_t>(kIndexHeaderSize + 4 * sequenceCount_ + 8 * i); }
  int64_t documentIndex(uint64_t d) const {
    return load<int64_t>(kIndexHeaderSize + 12 * sequenceCount_ + 8 * d);
  }

  /// The bytes of sequence i inside the mapped .bin (length x itemsize bytes, aligned to the itemsize).
  const uint8_t *sequenceData(uint64_t i) const { return bin_.data() + sequencePointer(i); }
  /// Sequence i's tokens in place; T must have the dataset's itemsize and signedness class (e.g. uint16_t for
  /// uint16). Returns null when it does not match the dtype.
  template <typename T> const T *sequenceAs(uint64_t i) const {
    if (!matches<T>())
      return nullptr;
    return reinterpret_cast<const T *>(sequenceData(i));
  }
  /// Token k of sequence i, widened to int64 (a float dtype's value is truncated toward zero).
  int64_t token(uint64_t i, uint64_t k) const;
  /// Sequence i's tokens, widened to int64 (copies).
  std::vector<int64_t> sequenceTokens(uint64_t i) const;

  /// The whole .bin and .idx as mapped.
  const MappedFile &dataFile() const { return bin_; }
  const MappedFile &indexFile() const { return idx_; }

private:
  IndexedDataset() = default;
  template <typename T> T load(uint64_t offset) const {
    T value;
    std::memcpy(&value, idx_.data() + offset, sizeof(T));
    return value;
  }
  template <typename T> bool matches() const;

  std::string prefix_;
  MappedFile idx_, bin_;
  DType dtype_ = DType::Int32;
  uint64_t sequenceCount_ = 0;
  uint64_t documentIndexCount_ = 0;
};

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

/// Writes an indexed dataset as Megatron's IndexedDatasetBuilder does: sequences (items) are appended to the
/// .bin as they come, documents are closed with endDocument() (or added whole with addDocument()), and
/// finalize() writes the .idx. Both files are written under temporary names beside their targets and renamed
/// into place by finalize() (.bin first, then .idx), after being flushed to disk; a writer destroyed before
/// finalize() removes its temporaries and leaves any existing dataset untouched.
///
/// Token values must fit the dtype (Megatron would wrap them silently; here it is an error naming the value).
/// Errors are returned as messages naming the file; after an error the writer accepts nothing more.
class IndexedDatasetWriter {
public:
  /// Creates the temporary .bin for `prefix`. Returns null and sets `error` on failure.
  static std::unique_ptr<IndexedDatasetWriter> create(const std::string &prefix, DType dtype, std::string &error);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter &) = delete;
  IndexedDatasetWriter &operator=(const IndexedDatasetWriter &) = delete;

  DType dtype() const { return dtype_; }
  const std::string &prefix() const { return prefix_; }

  /// Appends one sequence (Megatron's add_item). Returns an empty string on success.
  std::string addSequence(const int32_t *tokens, size_t count);
  std::string addSequence(const int64_t *tokens, size_t count);
  std::string addSequence(const std::vector<int32_t> &tokens) { return addSequence(tokens.data(), tokens.size()); }
  std::string addSequence(const std::vector<int64_t> &tokens) { return addSequence(tokens.data(), tokens.size()); }
  /// Closes the current document: its sequences are those added since the previous end (Megatron's
  /// end_document). A document with no sequence is allowed (a repeated document index).
  void endDocument();
  /// Appends a whole document: `tokens` split into sequences of `lengths` (which must sum to tokens.size()), then
  /// ends it (Megatron's add_document).
  std::string addDocument(const std::vector<int32_t> &tokens, const std::vector<int32_t> &lengths);
  std::string addDocument(const std::vector<int64_t> &tokens, const std::vector<int32_t> &lengths);
  /// Appends a whole validated dataset (Megatron's add_index): its sequences, its documents (its first
  /// document index, 0, dropped) and its .bin bytes. The dtypes must be equal.
  std::string addDataset(const IndexedDataset &dataset);

  /// Writes the .idx and renames both files into place. Returns an empty string on success.
  std::string finalize();

  uint64_t sequenceCount() const { return lengths_.size(); }
  uint64_t documentCount() const { return documentIndices_.size() - 1; }
  uint64_t bytesWritten() const { return binBytes_; }

private:
  IndexedDatasetWriter() = default;
  template <typename T> std::string addSequenceImpl(const T *tokens, size_t count);
  template <typename T> std::string addDocumentImpl(const std::vector<T> &tokens, const std::vector<int32_t> &lengths);
  std::string writeBin(const void *bytes, size_t size);
  std::string flushBuffer();
  std::string fail(std::string message);
  void discard();

  std::string prefix_;
  DType dtype_ = DType::Int32;
  std::string binTemp_;
  int binFd_ = -1;
  std::vector<uint8_t> buffer_; // pending .bin bytes
  std::vector<uint8_t> convert_;
  uint64_t binBytes_ = 0;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> documentIndices_{0};
  std::string error_;
  bool finalized_ = false;
};

/// The .idx bytes of a dataset with these sequence lengths and document indices (pointers computed from the
/// lengths), as Megatron's _IndexWriter writes them. Returns an empty vector and sets `error` when a pointer
/// overflows.
std::vector<uint8_t> encodeIndex(DType dtype, const std::vector<int32_t> &lengths,
                                 const std::vector<int64_t> &documentIndices, std::string &error);

//===----------------------------------------------------------------------===//
// Merging
//===----------------------------------------------------------------------===//

/// Concatenates the datasets at `inputPrefixes`, in that order, into `outputPrefix` (Megatron's
/// tools/merge_datasets.py: the output takes the first dataset's dtype, every other must have the same one;
/// sequences, documents and tokens are appended in order). Every input is validated first. Returns an empty
/// string on success.
std::string mergeIndexedDatasets(const std::vector<std::string> &inputPrefixes, const std::string &outputPrefix);

/// The prefixes in `directory` as merge_datasets.py finds them: every regular file's name without its last
/// extension, sorted; a `.bin` or `.idx` file must have its partner. Files that are neither .bin nor .idx are
/// ignored (merge_datasets.py refuses a directory holding any, unless a same-named .idx and .bin exist beside
/// them). Returns the prefixes joined to the directory; on error an empty list and `error`.
std::vector<std::string> datasetPrefixesIn(const std::string &directory, std::string &error);

} // namespace megatron::data

#endif // MEGATRON_RUNTIME_DATA_INDEXEDDATASET_H
