//===- IndexedDataset.cpp - Megatron-Core's indexed dataset (.bin/.idx) ----===//

#include "runtime/data/IndexedDataset.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <dirent.h>
#include <fcntl.h>
#include <limits>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "IndexedDataset reads and writes little-endian files in place: a little-endian host is required"
#endif

namespace megatron::data {

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

bool isDTypeCode(uint8_t code) { return code >= 1 && code <= 8; }

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::UInt8:
  case DType::Int8:
    return 1;
  case DType::Int16:
  case DType::UInt16:
    return 2;
  case DType::Int32:
  case DType::Float32:
    return 4;
  case DType::Int64:
  case DType::Float64:
    return 8;
  }
  return 0;
}

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::UInt8:
    return "uint8";
  case DType::Int8:
    return "int8";
  case DType::Int16:
    return "int16";
  case DType::Int32:
    return "int32";
  case DType::Int64:
    return "int64";
  case DType::Float64:
    return "float64";
  case DType::Float32:
    return "float32";
  case DType::UInt16:
    return "uint16";
  }
  return "?";
}

DType optimalDType(std::optional<int64_t> vocabularySize) {
  if (vocabularySize && *vocabularySize < 65500)
    return DType::UInt16;
  return DType::Int32;
}

std::string indexPath(const std::string &prefix) { return prefix + ".idx"; }
std::string dataPath(const std::string &prefix) { return prefix + ".bin"; }

std::optional<uint64_t> indexFileSize(uint64_t sequences, uint64_t documentIndices) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  // 34 + 12 S + 8 D without wrapping.
  if (sequences > (kMax - kIndexHeaderSize) / 12)
    return std::nullopt;
  uint64_t size = kIndexHeaderSize + 12 * sequences;
  if (documentIndices > (kMax - size) / 8)
    return std::nullopt;
  return size + 8 * documentIndices;
}

namespace {
std::string systemError(const std::string &what, const std::string &path, int error) {
  return what + " '" + path + "': " + std::strerror(error);
}

std::string number(uint64_t value) { return std::to_string(value); }
} // namespace

//===----------------------------------------------------------------------===//
// MappedFile
//===----------------------------------------------------------------------===//

MappedFile::MappedFile(MappedFile &&other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() {
  if (data_ && size_)
    ::munmap(const_cast<uint8_t *>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

bool MappedFile::open(const std::string &path, std::string &error) {
  reset();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = systemError("cannot open", path, errno);
    return false;
  }
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    error = systemError("cannot stat", path, errno);
    ::close(fd);
    return false;
  }
  if (!S_ISREG(info.st_mode)) {
    error = "cannot read '" + path + "': not a regular file";
    ::close(fd);
    return false;
  }
  uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size > 0) {
    if (size > std::numeric_limits<size_t>::max()) {
      error = "cannot map '" + path + "': too large for this address space";
      ::close(fd);
      return false;
    }
    void *map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      error = systemError("cannot map", path, errno);
      ::close(fd);
      return false;
    }
    data_ = static_cast<const uint8_t *>(map);
  }
  size_ = size;
  ::close(fd);
  return true;
}

//===----------------------------------------------------------------------===//
// IndexedDataset
//===----------------------------------------------------------------------===//

namespace {
template <typename T> T loadAt(const uint8_t *base, uint64_t offset) {
  T value;
  std::memcpy(&value, base + offset, sizeof(T));
  return value;
}

std::string printableMagic(const uint8_t *bytes, size_t size) {
  static const char *hex = "0123456789abcdef";
  std::string out = "b\"";
  for (size_t i = 0; i < size; ++i) {
    uint8_t c = bytes[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out + "\"";
}
} // namespace

std::string IndexedDataset::validateIndex(const uint8_t *idx, uint64_t idxSize, uint64_t binSize,
                                          const std::string &name) {
  auto bad = [&](const std::string &problem) { return name + ": " + problem; };

  // Header, field by field, so that a truncated header names the field it cuts.
  if (idxSize < sizeof(kIndexMagic))
    return bad("truncated: " + number(idxSize) + " bytes, shorter than the 9-byte magic (an .idx file is at least " +
               number(kIndexHeaderSize) + " bytes)");
  if (std::memcmp(idx, kIndexMagic, sizeof(kIndexMagic)) != 0)
    return bad("not a Megatron indexed dataset index: the magic is " + printableMagic(idx, sizeof(kIndexMagic)) +
               ", expected b\"MMIDIDX\\x00\\x00\"");
  if (idxSize < 17)
    return bad("truncated inside the version field (" + number(idxSize) + " bytes)");
  uint64_t version = loadAt<uint64_t>(idx, 9);
  if (version != kIndexVersion)
    return bad("unsupported version " + number(version) + " (only version 1 exists)");
  if (idxSize < 18)
    return bad("truncated before the dtype code (" + number(idxSize) + " bytes)");
  uint8_t code = idx[17];
  if (!isDTypeCode(code))
    return bad("unknown dtype code " + number(code) +
               " (Megatron's codes: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16)");
  DType dtype = static_cast<DType>(code);
  uint64_t itemSize = dtypeSize(dtype);
  if (idxSize < kIndexHeaderSize)
    return bad("truncated inside the header: " + number(idxSize) + " bytes, the header is " +
               number(kIndexHeaderSize));
  uint64_t sequences = loadAt<uint64_t>(idx, 18);
  uint64_t documentIndices = loadAt<uint64_t>(idx, 26);

  // Counts against the file length.
  std::optional<uint64_t> expected = indexFileSize(sequences, documentIndices);
  if (!expected || *expected != idxSize) {
    std::string need = expected ? number(*expected) + " bytes" : "more than 2^64 bytes";
    std::string what = !expected || *expected > idxSize ? "truncated or its counts are wrong"
                                                        : "has trailing bytes or its counts are wrong";
    return bad(what + ": " + number(sequences) + " sequences and " + number(documentIndices) +
               " document indices need " + need + " (34 + 12 x sequences + 8 x document indices), the file has " +
               number(idxSize));
  }
  if (documentIndices == 0)
    return bad("no document indices: there must be at least one (the leading 0)");

  // Lengths and pointers: every sequence inside the .bin, stored back to back.
  uint64_t lengthsAt = kIndexHeaderSize, pointersAt = lengthsAt + 4 * sequences;
  uint64_t documentsAt = pointersAt + 8 * sequences;
  uint64_t offset = 0; // the running sum of the lengths, in bytes: where sequence i must start
  for (uint64_t i = 0; i < sequences; ++i) {
    int32_t length = loadAt<int32_t>(idx, lengthsAt + 4 * i);
    int64_t pointer = loadAt<int64_t>(idx, pointersAt + 8 * i);
    if (length < 0)
      return bad("sequence " + number(i) + " has a negative length " + std::to_string(length));
    if (pointer < 0)
      return bad("sequence " + number(i) + " has a negative pointer " + std::to_string(pointer));
    uint64_t start = static_cast<uint64_t>(pointer);
    uint64_t bytes = static_cast<uint64_t>(length) * itemSize;
    if (start > binSize || bytes > binSize - start)
      return bad("sequence " + number(i) + " (" + std::to_string(length) + " tokens at byte " + number(start) +
                 ") runs past the end of the .bin file (" + number(binSize) + " bytes)");
    if (start != offset)
      return bad("sequence " + number(i) + " starts at byte " + number(start) + ", expected " + number(offset) +
                 " (sequences are stored back to back: each pointer is the previous one plus its length x " +
                 number(itemSize) + ")");
    offset += bytes; // cannot overflow: offset <= binSize
  }
  if (offset != binSize)
    return bad("the .bin file has " + number(binSize) + " bytes but the sequences hold " + number(offset) + " (" +
               number(offset / itemSize) + " " + dtypeName(dtype) + " tokens)");

  // Document indices: 0, non-decreasing, ending at the sequence count.
  int64_t previous = 0;
  for (uint64_t d = 0; d < documentIndices; ++d) {
    int64_t index = loadAt<int64_t>(idx, documentsAt + 8 * d);
    if (d == 0 && index != 0)
      return bad("document index 0 is " + std::to_string(index) + ", expected 0");
    if (index < previous)
      return bad("document index " + number(d) + " is " + std::to_string(index) + ", less than the one before (" +
                 std::to_string(previous) + "): document indices never decrease");
    if (static_cast<uint64_t>(index) > sequences)
      return bad("document index " + number(d) + " is " + std::to_string(index) + ", beyond the " +
                 number(sequences) + " sequences");
    previous = index;
  }
  if (static_cast<uint64_t>(previous) != sequences)
    return bad("the last document index is " + std::to_string(previous) + ", expected the sequence count " +
               number(sequences) + " (sequences after the last document belong to none)");
  return {};
}

std::unique_ptr<IndexedDataset> IndexedDataset::open(const std::string &prefix, std::string &error) {
  std::unique_ptr<IndexedDataset> dataset(new IndexedDataset());
  dataset->prefix_ = prefix;
  std::string idxName = indexPath(prefix), binName = dataPath(prefix);
  if (!dataset->idx_.open(idxName, error) || !dataset->bin_.open(binName, error))
    return nullptr;
  error = validateIndex(dataset->idx_.data(), dataset->idx_.size(), dataset->bin_.size(), idxName);
  if (!error.empty())
    return nullptr;
  dataset->dtype_ = static_cast<DType>(dataset->idx_.data()[17]);
  dataset->sequenceCount_ = dataset->load<uint64_t>(18);
  dataset->documentIndexCount_ = dataset->load<uint64_t>(26);
  return dataset;
}

template <typename T> bool IndexedDataset::matches() const {
  if (sizeof(T) != itemSize())
    return false;
  switch (dtype_) {
  case DType::Float32:
  case DType::Float64:
    return std::is_floating_point_v<T>;
  case DType::UInt8:
  case DType::UInt16:
    return std::is_integral_v<T> && std::is_unsigned_v<T>;
  default:
    return std::is_integral_v<T> && std::is_signed_v<T>;
  }
}

template bool IndexedDataset::matches<uint8_t>() const;
template bool IndexedDataset::matches<int8_t>() const;
template bool IndexedDataset::matches<uint16_t>() const;
template bool IndexedDataset::matches<int16_t>() const;
template bool IndexedDataset::matches<int32_t>() const;
template bool IndexedDataset::matches<int64_t>() const;
template bool IndexedDataset::matches<float>() const;
template bool IndexedDataset::matches<double>() const;

int64_t IndexedDataset::token(uint64_t i, uint64_t k) const {
  const uint8_t *p = sequenceData(i) + k * itemSize();
  switch (dtype_) {
  case DType::UInt8:
    return *p;
  case DType::Int8:
    return static_cast<int8_t>(*p);
  case DType::Int16:
    return loadAt<int16_t>(p, 0);
  case DType::UInt16:
    return loadAt<uint16_t>(p, 0);
  case DType::Int32:
    return loadAt<int32_t>(p, 0);
  case DType::Int64:
    return loadAt<int64_t>(p, 0);
  case DType::Float32: {
    float value = loadAt<float>(p, 0);
    return std::isfinite(value) && std::fabs(value) < 9.2e18f ? static_cast<int64_t>(value) : 0;
  }
  case DType::Float64: {
    double value = loadAt<double>(p, 0);
    return std::isfinite(value) && std::fabs(value) < 9.2e18 ? static_cast<int64_t>(value) : 0;
  }
  }
  return 0;
}

std::vector<int64_t> IndexedDataset::sequenceTokens(uint64_t i) const {
  uint64_t length = static_cast<uint64_t>(sequenceLength(i));
  std::vector<int64_t> tokens(length);
  for (uint64_t k = 0; k < length; ++k)
    tokens[k] = token(i, k);
  return tokens;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

std::vector<uint8_t> encodeIndex(DType dtype, const std::vector<int32_t> &lengths,
                                 const std::vector<int64_t> &documentIndices, std::string &error) {
  std::optional<uint64_t> size = indexFileSize(lengths.size(), documentIndices.size());
  if (!size) {
    error = "the index would be larger than 2^64 bytes";
    return {};
  }
  std::vector<uint8_t> out(static_cast<size_t>(*size));
  uint8_t *p = out.data();
  auto put = [&p](const void *bytes, size_t n) {
    if (n)
      std::memcpy(p, bytes, n);
    p += n;
  };
  put(kIndexMagic, sizeof(kIndexMagic));
  uint64_t version = kIndexVersion;
  put(&version, 8);
  uint8_t code = static_cast<uint8_t>(dtype);
  put(&code, 1);
  uint64_t sequences = lengths.size(), documents = documentIndices.size();
  put(&sequences, 8);
  put(&documents, 8);
  put(lengths.data(), 4 * lengths.size());
  int64_t pointer = 0;
  int64_t itemSize = static_cast<int64_t>(dtypeSize(dtype));
  for (int32_t length : lengths) {
    put(&pointer, 8);
    int64_t bytes = static_cast<int64_t>(length) * itemSize;
    if (length < 0 || pointer > std::numeric_limits<int64_t>::max() - bytes) {
      error = "a sequence pointer does not fit in int64";
      return {};
    }
    pointer += bytes;
  }
  put(documentIndices.data(), 8 * documentIndices.size());
  return out;
}

namespace {
constexpr size_t kBufferSize = size_t(1) << 20;

bool writeAllFd(int fd, const uint8_t *data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, std::min<size_t>(size, size_t(1) << 30));
    if (written < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

/// A temporary file beside `path`: `path.tmp.XXXXXX`, created 0600 and later given the usual permissions.
int createTemporary(const std::string &path, std::string &tempPath, std::string &error) {
  std::string pattern = path + ".tmp.XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) {
    error = systemError("cannot create a temporary file for", path, errno);
    return -1;
  }
  tempPath = name.data();
  return fd;
}

std::string closeAndRename(int fd, const std::string &tempPath, const std::string &path) {
  mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0)
    return systemError("cannot set the permissions of", tempPath, errno);
  if (::fsync(fd) != 0)
    return systemError("cannot flush", tempPath, errno);
  if (::close(fd) != 0)
    return systemError("cannot close", tempPath, errno);
  if (::rename(tempPath.c_str(), path.c_str()) != 0)
    return systemError("cannot rename " + tempPath + " to", path, errno);
  return {};
}

template <typename T> bool fits(int64_t value) {
  if constexpr (std::is_floating_point_v<T>) {
    // Exactly representable integers only.
    return value > -(int64_t(1) << 62) && value < (int64_t(1) << 62) &&
           static_cast<int64_t>(static_cast<T>(value)) == value;
  } else {
    return value >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           (value < 0 || static_cast<uint64_t>(value) <= static_cast<uint64_t>(std::numeric_limits<T>::max()));
  }
}

/// Appends `count` tokens converted to T to `out`; returns the index of the first that does not fit, or count.
template <typename T, typename Src> size_t convertTokens(const Src *tokens, size_t count, std::vector<uint8_t> &out) {
  size_t start = out.size();
  out.resize(start + count * sizeof(T));
  uint8_t *p = out.data() + start;
  for (size_t i = 0; i < count; ++i) {
    int64_t value = static_cast<int64_t>(tokens[i]);
    if (!fits<T>(value)) {
      out.resize(start);
      return i;
    }
    T converted = static_cast<T>(value);
    std::memcpy(p + i * sizeof(T), &converted, sizeof(T));
  }
  return count;
}

template <typename Src>
size_t convertAny(DType dtype, const Src *tokens, size_t count, std::vector<uint8_t> &out) {
  switch (dtype) {
  case DType::UInt8:
    return convertTokens<uint8_t>(tokens, count, out);
  case DType::Int8:
    return convertTokens<int8_t>(tokens, count, out);
  case DType::Int16:
    return convertTokens<int16_t>(tokens, count, out);
  case DType::UInt16:
    return convertTokens<uint16_t>(tokens, count, out);
  case DType::Int32:
    return convertTokens<int32_t>(tokens, count, out);
  case DType::Int64:
    return convertTokens<int64_t>(tokens, count, out);
  case DType::Float32:
    return convertTokens<float>(tokens, count, out);
  case DType::Float64:
    return convertTokens<double>(tokens, count, out);
  }
  return 0;
}
} // namespace

std::unique_ptr<IndexedDatasetWriter> IndexedDatasetWriter::create(const std::string &prefix, DType dtype,
                                                                   std::string &error) {
  if (!isDTypeCode(static_cast<uint8_t>(dtype))) {
    error = "invalid dtype code " + number(static_cast<uint8_t>(dtype));
    return nullptr;
  }
  std::unique_ptr<IndexedDatasetWriter> writer(new IndexedDatasetWriter());
  writer->prefix_ = prefix;
  writer->dtype_ = dtype;
  writer->binFd_ = createTemporary(dataPath(prefix), writer->binTemp_, error);
  if (writer->binFd_ < 0)
    return nullptr;
  writer->buffer_.reserve(kBufferSize);
  return writer;
}

IndexedDatasetWriter::~IndexedDatasetWriter() { discard(); }

void IndexedDatasetWriter::discard() {
  if (binFd_ >= 0) {
    ::close(binFd_);
    binFd_ = -1;
  }
  if (!finalized_ && !binTemp_.empty())
    ::unlink(binTemp_.c_str());
  binTemp_.clear();
}

std::string IndexedDatasetWriter::fail(std::string message) {
  if (error_.empty())
    error_ = message;
  discard();
  return message;
}

std::string IndexedDatasetWriter::flushBuffer() {
  if (!buffer_.empty()) {
    if (!writeAllFd(binFd_, buffer_.data(), buffer_.size()))
      return fail(systemError("cannot write", binTemp_, errno));
    buffer_.clear();
  }
  return {};
}

std::string IndexedDatasetWriter::writeBin(const void *bytes, size_t size) {
  const uint8_t *data = static_cast<const uint8_t *>(bytes);
  if (buffer_.size() + size <= kBufferSize) {
    buffer_.insert(buffer_.end(), data, data + size);
  } else {
    if (std::string error = flushBuffer(); !error.empty())
      return error;
    if (!writeAllFd(binFd_, data, size))
      return fail(systemError("cannot write", binTemp_, errno));
  }
  binBytes_ += size;
  return {};
}

template <typename T> std::string IndexedDatasetWriter::addSequenceImpl(const T *tokens, size_t count) {
  if (!error_.empty() || finalized_)
    return error_.empty() ? "the dataset " + prefix_ + " is already finalized" : error_;
  if (count > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return fail(dataPath(prefix_) + ": a sequence of " + number(count) +
                " tokens does not fit the index's int32 lengths");
  size_t bytes = count * dtypeSize(dtype_);
  if (binBytes_ + bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail(dataPath(prefix_) + ": the data would exceed 2^63 bytes");
  // Small sequences are converted into the write buffer, large ones into a scratch vector written at once.
  bool direct = buffer_.size() + bytes > kBufferSize;
  std::vector<uint8_t> &target = direct ? convert_ : buffer_;
  if (direct)
    convert_.clear();
  size_t converted = convertAny(dtype_, tokens, count, target);
  if (converted != count)
    return fail(dataPath(prefix_) + ": token " + std::to_string(static_cast<int64_t>(tokens[converted])) +
                " does not fit the dataset's dtype " + dtypeName(dtype_));
  if (direct) {
    if (std::string error = flushBuffer(); !error.empty())
      return error;
    if (!writeAllFd(binFd_, convert_.data(), convert_.size()))
      return fail(systemError("cannot write", binTemp_, errno));
    if (convert_.capacity() > 4 * kBufferSize)
      std::vector<uint8_t>().swap(convert_);
  }
  binBytes_ += bytes;
  lengths_.push_back(static_cast<int32_t>(count));
  return {};
}

std::string IndexedDatasetWriter::addSequence(const int32_t *tokens, size_t count) {
  return addSequenceImpl(tokens, count);
}
std::string IndexedDatasetWriter::addSequence(const int64_t *tokens, size_t count) {
  return addSequenceImpl(tokens, count);
}

void IndexedDatasetWriter::endDocument() {
  if (error_.empty() && !finalized_)
    documentIndices_.push_back(static_cast<int64_t>(lengths_.size()));
}

template <typename T>
std::string IndexedDatasetWriter::addDocumentImpl(const std::vector<T> &tokens, const std::vector<int32_t> &lengths) {
  uint64_t total = 0;
  for (int32_t length : lengths) {
    if (length < 0)
      return fail(dataPath(prefix_) + ": a negative sequence length " + std::to_string(length));
    total += static_cast<uint64_t>(length);
  }
  if (total != tokens.size())
    return fail(dataPath(prefix_) + ": the sequence lengths of a document sum to " + number(total) + ", but it has " +
                number(tokens.size()) + " tokens");
  size_t at = 0;
  for (int32_t length : lengths) {
    if (std::string error = addSequenceImpl(tokens.data() + at, static_cast<size_t>(length)); !error.empty())
      return error;
    at += static_cast<size_t>(length);
  }
  endDocument();
  return {};
}

std::string IndexedDatasetWriter::addDocument(const std::vector<int32_t> &tokens,
                                              const std::vector<int32_t> &lengths) {
  return addDocumentImpl(tokens, lengths);
}
std::string IndexedDatasetWriter::addDocument(const std::vector<int64_t> &tokens,
                                              const std::vector<int32_t> &lengths) {
  return addDocumentImpl(tokens, lengths);
}

std::string IndexedDatasetWriter::addDataset(const IndexedDataset &dataset) {
  if (!error_.empty() || finalized_)
    return error_.empty() ? "the dataset " + prefix_ + " is already finalized" : error_;
  if (dataset.dtype() != dtype_)
    return fail(indexPath(dataset.prefix()) + ": its dtype is " + dtypeName(dataset.dtype()) + ", but the output " +
                prefix_ + " is " + dtypeName(dtype_) + " (datasets of different dtypes cannot be merged)");
  const MappedFile &bin = dataset.dataFile();
  if (binBytes_ + bin.size() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail(dataPath(prefix_) + ": the data would exceed 2^63 bytes");
  int64_t offset = static_cast<int64_t>(lengths_.size());
  uint64_t sequences = dataset.sequenceCount();
  lengths_.reserve(lengths_.size() + sequences);
  for (uint64_t i = 0; i < sequences; ++i)
    lengths_.push_back(dataset.sequenceLength(i));
  documentIndices_.reserve(documentIndices_.size() + dataset.documentCount());
  for (uint64_t d = 1; d < dataset.documentIndexCount(); ++d)
    documentIndices_.push_back(offset + dataset.documentIndex(d));
  if (bin.size() > 0)
    return writeBin(bin.data(), static_cast<size_t>(bin.size()));
  return {};
}

std::string IndexedDatasetWriter::finalize() {
  if (!error_.empty())
    return error_;
  if (finalized_)
    return "the dataset " + prefix_ + " is already finalized";
  if (std::string error = flushBuffer(); !error.empty())
    return error;
  std::string error;
  std::vector<uint8_t> index = encodeIndex(dtype_, lengths_, documentIndices_, error);
  if (!error.empty())
    return fail(indexPath(prefix_) + ": " + error);

  std::string idxTemp;
  int idxFd = createTemporary(indexPath(prefix_), idxTemp, error);
  if (idxFd < 0)
    return fail(error);
  if (!writeAllFd(idxFd, index.data(), index.size())) {
    error = systemError("cannot write", idxTemp, errno);
    ::close(idxFd);
    ::unlink(idxTemp.c_str());
    return fail(error);
  }
  // The .bin goes into place first and the .idx last, so a reader never sees a new .idx beside an old .bin.
  error = closeAndRename(binFd_, binTemp_, dataPath(prefix_));
  binFd_ = -1;
  if (!error.empty()) {
    ::close(idxFd);
    ::unlink(idxTemp.c_str());
    return fail(error);
  }
  binTemp_.clear();
  error = closeAndRename(idxFd, idxTemp, indexPath(prefix_));
  if (!error.empty()) {
    ::unlink(idxTemp.c_str());
    return fail(error);
  }
  finalized_ = true;
  // Make the renames durable.
  std::string path = dataPath(prefix_);
  size_t slash = path.find_last_of('/');
  std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dirFd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
  return {};
}

//===----------------------------------------------------------------------===//
// Merging
//===----------------------------------------------------------------------===//

std::string mergeIndexedDatasets(const std::vector<std::string> &inputPrefixes, const std::string &outputPrefix) {
  if (inputPrefixes.empty())
    return "no datasets to merge";
  std::vector<std::unique_ptr<IndexedDataset>> inputs;
  for (const std::string &prefix : inputPrefixes) {
    std::string error;
    std::unique_ptr<IndexedDataset> dataset = IndexedDataset::open(prefix, error);
    if (!dataset)
      return error;
    if (!inputs.empty() && dataset->dtype() != inputs.front()->dtype())
      return indexPath(prefix) + ": its dtype is " + dtypeName(dataset->dtype()) + ", but " +
             indexPath(inputs.front()->prefix()) + "'s is " + dtypeName(inputs.front()->dtype()) +
             " (datasets of different dtypes cannot be merged)";
    inputs.push_back(std::move(dataset));
  }
  std::string error;
  std::unique_ptr<IndexedDatasetWriter> writer =
      IndexedDatasetWriter::create(outputPrefix, inputs.front()->dtype(), error);
  if (!writer)
    return error;
  for (const std::unique_ptr<IndexedDataset> &input : inputs)
    if (std::string failure = writer->addDataset(*input); !failure.empty())
      return failure;
  return writer->finalize();
}

std::vector<std::string> datasetPrefixesIn(const std::string &directory, std::string &error) {
  DIR *dir = ::opendir(directory.c_str());
  if (!dir) {
    error = systemError("cannot list", directory, errno);
    return {};
  }
  std::string base = directory;
  if (!base.empty() && base.back() != '/')
    base += '/';
  auto isRegular = [](const std::string &path) {
    struct stat info;
    return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
  };
  std::set<std::string> prefixes;
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent *entry = ::readdir(dir))
    names.push_back(entry->d_name);
  ::closedir(dir);
  for (const std::string &name : names) {
    if (name == "." || name == "..")
      continue;
    // os.path.splitext: the extension starts at the last dot, unless the name's dots are all leading.
    size_t dot = name.find_last_of('.');
    if (dot == std::string::npos || name.find_first_not_of('.') > dot)
      continue;
    std::string stem = name.substr(0, dot), extension = name.substr(dot);
    if (extension != ".bin" && extension != ".idx")
      continue;
    if (!isRegular(base + name))
      continue;
    std::string partner = base + stem + (extension == ".idx" ? ".bin" : ".idx");
    if (!isRegular(partner)) {
      error = "no " + std::string(extension == ".idx" ? ".bin" : ".idx") + " file for " + base + stem;
      return {};
    }
    prefixes.insert(stem);
  }
  std::vector<std::string> result;
  for (const std::string &stem : prefixes)
    result.push_back(base + stem);
  return result;
}

} // namespace megatron::data
