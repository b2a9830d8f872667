//===- CheckpointReader.cpp - Finding, verifying and loading checkpoints --===//
//
// open() trusts nothing: it parses the metadata, checks its format and version, verifies its checksum against the
// data file's header, validates the table of tensors, and compares the data file's size with the table. Tensors
// are then read with pread() straight into the caller's memory and checksummed in the same pass.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Checkpoint.h"

#include "runtime/checkpoint/Checksum.h"
#include "runtime/checkpoint/FileIO.h"
#include "runtime/checkpoint/Format.h"
#include "runtime/checkpoint/Metadata.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace megatron::ckpt {

namespace {
/// Tensors are read and checksummed in pieces of this size (see CheckpointWriter.cpp).
constexpr size_t kChunkBytes = 2u << 20;

std::string baseName(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// Text from a file, for quoting in a message: at most 40 characters, control characters escaped.
std::string quoteForMessage(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 40; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    } else
      out += static_cast<char>(c);
  }
  return out + (text.size() > 40 ? "...\"" : "\"");
}
} // namespace

//===----------------------------------------------------------------------===//
// Opening
//===----------------------------------------------------------------------===//

CheckpointReader::~CheckpointReader() { close(); }

CheckpointReader::CheckpointReader(CheckpointReader &&other) noexcept { *this = std::move(other); }

CheckpointReader &CheckpointReader::operator=(CheckpointReader &&other) noexcept {
  if (this != &other) {
    close();
    dir = std::move(other.dir);
    checkpointInfo = std::move(other.checkpointInfo);
    records = std::move(other.records);
    index = std::move(other.index);
    dataFd = other.dataFd;
    other.dataFd = -1;
  }
  return *this;
}

void CheckpointReader::close() {
  if (dataFd >= 0)
    ::close(dataFd);
  dataFd = -1;
}

std::string CheckpointReader::metadataPath() const { return joinPath(dir, std::string(kMetadataFileName)); }
std::string CheckpointReader::dataPath() const { return joinPath(dir, std::string(kDataFileName)); }

std::string CheckpointReader::open(const std::string &directory) {
  close();
  dir = directory;
  checkpointInfo = CheckpointInfo();
  records.clear();
  index.clear();
  try {
    return openChecked();
  } catch (const std::exception &e) { // Out of memory, in practice: still a message, not a crash.
    close();
    return "cannot open checkpoint '" + dir + "': " + e.what();
  }
}

std::string CheckpointReader::openChecked() {
  int error = 0;
  switch (pathKind(dir, error)) {
  case PathKind::Missing:
    return "checkpoint directory '" + dir + "' does not exist";
  case PathKind::Other:
    return "checkpoint directory '" + dir + "' is not a directory";
  case PathKind::Error:
    return "cannot open checkpoint directory '" + dir + "': " + errorText(error);
  case PathKind::Directory:
    break;
  }

  // The metadata: JSON, then the format and version, which need no checksum to be reported meaningfully.
  std::string metaPath = metadataPath();
  std::string text;
  if ((error = readWholeFile(metaPath, text)) == ENOENT)
    return "metadata file '" + metaPath + "' is missing: '" + dir + "' is not a complete checkpoint";
  if (error)
    return "cannot read metadata file '" + metaPath + "': " + errorText(error);
  nlohmann::json document;
  std::string message = parseMetadataHead(metaPath, text, document);
  if (!message.empty())
    return message;

  // The data file's header, which holds the metadata's checksum.
  std::string path = dataPath();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = errno;
    if (error == ENOENT)
      return "data file '" + path + "' is missing: '" + dir + "' is not a complete checkpoint";
    return "cannot open data file '" + path + "': " + errorText(error);
  }
  std::unique_ptr<int, void (*)(int *)> guard(&fd, [](int *f) {
    if (*f >= 0)
      ::close(*f);
  });
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return "cannot open data file '" + path + "': " + errorText(errno);
  if (!S_ISREG(st.st_mode))
    return "data file '" + path + "' is not a regular file";
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kDataHeaderBytes)
    return "data file '" + path + "' is truncated: it has " + std::to_string(size) + " bytes, less than its " +
           std::to_string(kDataHeaderBytes) + "-byte header";
  unsigned char headerBytes[kDataHeaderBytes];
  size_t got = 0;
  if ((error = preadAll(fd, headerBytes, kDataHeaderBytes, 0, got)) || got != kDataHeaderBytes)
    return "cannot read the header of data file '" + path + "': " + errorText(error ? error : EIO);
  DataHeader header;
  switch (decodeDataHeader(headerBytes, header)) {
  case HeaderStatus::BadMagic:
    return "data file '" + path + "' is not a checkpoint data file: it does not start with \"" +
           std::string(kDataMagic) + "\"";
  case HeaderStatus::BadChecksum:
    return "data file '" + path + "' has a corrupted header: its checksum does not match";
  case HeaderStatus::Ok:
    break;
  }
  uint64_t metaChecksum = checksum(text.data(), text.size());
  if (header.metadataBytes != text.size() || header.metadataChecksum != metaChecksum)
    return "checksum mismatch in metadata file '" + metaPath + "': the header of '" + path + "' records xxh3 " +
           checksumHex(header.metadataChecksum) + " over " + std::to_string(header.metadataBytes) +
           " bytes, the file has xxh3 " + checksumHex(metaChecksum) + " over " + std::to_string(text.size()) +
           " bytes; the metadata was modified or damaged after saving, or the two files come from different "
           "checkpoints";

  // Every field and the table of tensors.
  Metadata metadata;
  if (!(message = decodeMetadata(metaPath, document, metadata)).empty())
    return message;
  if (header.version != kFormatVersion || header.dataBytes != metadata.dataBytes ||
      header.tensorCount != metadata.tensors.size() ||
      header.iteration != static_cast<uint64_t>(metadata.info.iteration))
    return "data file '" + path + "' does not match metadata file '" + metaPath +
           "': their version, size, tensor count or iteration differ";

  // The data file's size: a short file is a truncated checkpoint; name the first tensor that was cut off.
  if (size < metadata.dataBytes) {
    const TensorRecord *cut = nullptr;
    for (const TensorRecord &t : metadata.tensors)
      if (t.offset + t.bytes > size && t.bytes && (!cut || t.offset < cut->offset))
        cut = &t;
    message = "data file '" + path + "' is truncated: it has " + std::to_string(size) + " bytes, the checkpoint needs " +
              std::to_string(metadata.dataBytes);
    if (cut)
      message += "; tensor '" + cut->name + "' (bytes " + std::to_string(cut->offset) + ".." +
                 std::to_string(cut->offset + cut->bytes) + ") is cut off";
    return message;
  }
  if (size > metadata.dataBytes)
    return "data file '" + path + "' has " + std::to_string(size) + " bytes, more than the " +
           std::to_string(metadata.dataBytes) + " the checkpoint wrote: something was appended to it";

  // A directory named for an iteration must hold that iteration, or resuming would restart the schedule wrongly.
  int64_t named = iterationOfDirectoryName(baseName(dir));
  if (named >= 0 && named != metadata.info.iteration)
    return "checkpoint directory '" + dir + "' is named for iteration " + std::to_string(named) +
           ", but its metadata records iteration " + std::to_string(metadata.info.iteration);

  // Tensors are mostly read front to back: let the kernel read ahead further.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  checkpointInfo = std::move(metadata.info);
  records = std::move(metadata.tensors);
  for (size_t i = 0; i < records.size(); ++i)
    index.emplace(records[i].name, i);
  dataFd = fd;
  fd = -1;
  return {};
}

const TensorRecord *CheckpointReader::find(std::string_view name) const {
  auto it = index.find(std::string(name));
  return it == index.end() ? nullptr : &records[it->second];
}

std::string CheckpointReader::checkFingerprints(std::string_view model, std::string_view plan) const {
  if (!model.empty() && model != checkpointInfo.modelFingerprint)
    return "checkpoint '" + dir + "' was saved for a different model: its model fingerprint is '" +
           checkpointInfo.modelFingerprint + "', this run's is '" + std::string(model) + "'";
  if (!plan.empty() && plan != checkpointInfo.planFingerprint)
    return "checkpoint '" + dir + "' was saved with a different plan: its plan fingerprint is '" +
           checkpointInfo.planFingerprint + "', this run's is '" + std::string(plan) + "'";
  return {};
}

//===----------------------------------------------------------------------===//
// Reading tensors
//===----------------------------------------------------------------------===//

std::string CheckpointReader::check(const LoadTensor &tensor, const TensorRecord *&record) const {
  if (dataFd < 0)
    return "no checkpoint is open (CheckpointReader::open failed or was not called)";
  record = find(tensor.name);
  if (!record)
    return "checkpoint '" + dir + "' has no tensor '" + tensor.name + "'";
  if (record->dtype != tensor.dtype)
    return "tensor '" + tensor.name + "' in checkpoint '" + dir + "' has dtype " +
           std::string(dtypeName(record->dtype)) + ", expected " + std::string(dtypeName(tensor.dtype));
  if (record->shape != tensor.shape)
    return "tensor '" + tensor.name + "' in checkpoint '" + dir + "' has shape " + shapeString(record->shape) +
           ", expected " + shapeString(tensor.shape);
  if (tensor.data && tensor.write)
    return "tensor '" + tensor.name + "' has two destinations: set LoadTensor::data or LoadTensor::write, not both";
  if (record->bytes && !tensor.data && !tensor.write)
    return "tensor '" + tensor.name + "' has no destination: set LoadTensor::data or LoadTensor::write";
  return {};
}

std::string CheckpointReader::readRecord(
    const TensorRecord &record, void *data,
    const std::function<std::string(uint64_t, const void *, size_t)> &write) const {
  std::string path = dataPath();
  std::unique_ptr<char[]> buffer;
  if (!data && record.bytes)
    buffer.reset(new char[std::min<uint64_t>(kChunkBytes, record.bytes)]);
  Hasher hasher;
  for (uint64_t done = 0; done < record.bytes;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, record.bytes - done));
    char *piece = data ? static_cast<char *>(data) + done : buffer.get();
    size_t got = 0;
    if (int error = preadAll(dataFd, piece, n, record.offset + done, got))
      return "cannot read tensor '" + record.name + "' from data file '" + path + "': " + errorText(error);
    if (got != n)
      return "data file '" + path + "' ends inside tensor '" + record.name +
             "': it was truncated after the checkpoint was opened";
    hasher.update(piece, n);
    if (write) {
      std::string error = write(done, piece, n);
      if (!error.empty())
        return "cannot store tensor '" + record.name + "': " + error;
    }
    done += n;
  }
  uint64_t computed = hasher.digest();
  if (computed != record.checksum)
    return "checksum mismatch in tensor '" + record.name + "' of data file '" + path + "' (bytes " +
           std::to_string(record.offset) + ".." + std::to_string(record.offset + record.bytes) + "): recorded " +
           checksumHex(record.checksum) + ", computed " + checksumHex(computed) + "; the file is corrupted";
  return {};
}

std::string CheckpointReader::readTensor(const LoadTensor &tensor) const {
  const TensorRecord *record = nullptr;
  std::string error = check(tensor, record);
  return error.empty() ? readRecord(*record, tensor.data, tensor.write) : error;
}

std::string CheckpointReader::readTensors(const std::vector<LoadTensor> &tensors) const {
  std::vector<std::pair<const TensorRecord *, const LoadTensor *>> reads;
  reads.reserve(tensors.size());
  std::vector<bool> requested(records.size());
  for (const LoadTensor &tensor : tensors) {
    const TensorRecord *record = nullptr;
    std::string error = check(tensor, record);
    if (!error.empty())
      return error;
    if (requested[static_cast<size_t>(record - records.data())])
      return "tensor '" + tensor.name + "' is requested twice";
    requested[static_cast<size_t>(record - records.data())] = true;
    reads.emplace_back(record, &tensor);
  }
  // In file order: sequential reads.
  std::stable_sort(reads.begin(), reads.end(),
                   [](const auto &a, const auto &b) { return a.first->offset < b.first->offset; });
  for (const auto &[record, tensor] : reads) {
    std::string error = readRecord(*record, tensor->data, tensor->write);
    if (!error.empty())
      return error;
  }
  return {};
}

std::string CheckpointReader::verifyAll() const {
  if (dataFd < 0)
    return "no checkpoint is open (CheckpointReader::open failed or was not called)";
  for (const TensorRecord &record : records) {
    std::string error = readRecord(record, nullptr, nullptr);
    if (!error.empty())
      return error;
  }
  return {};
}

//===----------------------------------------------------------------------===//
// The latest checkpoint
//===----------------------------------------------------------------------===//

bool hasLatestCheckpoint(const std::string &loadDir) {
  struct stat st;
  return ::stat(joinPath(loadDir, std::string(kLatestFileName)).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string findLatestCheckpoint(const std::string &loadDir, LatestCheckpoint &latest) {
  int error = 0;
  switch (pathKind(loadDir, error)) {
  case PathKind::Missing:
    return "load directory '" + loadDir + "' does not exist";
  case PathKind::Other:
    return "load directory '" + loadDir + "' is not a directory";
  case PathKind::Error:
    return "cannot open load directory '" + loadDir + "': " + errorText(error);
  case PathKind::Directory:
    break;
  }
  std::string latestPath = joinPath(loadDir, std::string(kLatestFileName));
  std::string text;
  if ((error = readWholeFile(latestPath, text)) == ENOENT)
    return "no checkpoint in '" + loadDir + "': " + std::string(kLatestFileName) + " is missing";
  if (error)
    return "cannot read '" + latestPath + "': " + errorText(error);
  LatestCheckpoint found;
  if (!parseLatestFile(text, found.iteration, found.release))
    return "'" + latestPath + "' does not hold an iteration number: it holds " + quoteForMessage(text);
  found.directory = found.release ? joinPath(loadDir, "release") : iterationDirectory(loadDir, found.iteration);
  PathKind kind = pathKind(found.directory, error);
  if (kind == PathKind::Other)
    return "'" + latestPath + "' names a checkpoint directory '" + found.directory + "' that is not a directory";
  if (kind != PathKind::Directory) {
    // A save that replaced this iteration without RENAME_EXCHANGE and stopped between its two renames left the
    // complete old copy under this name (see CheckpointWriter.cpp).
    std::string aside = joinPath(loadDir, "." + iterationDirectoryName(found.iteration) + ".old");
    if (found.release || pathKind(aside, error) != PathKind::Directory)
      return "'" + latestPath + "' names " +
             (found.release ? std::string("release") : "iteration " + std::to_string(found.iteration)) +
             ", but its directory '" + found.directory + "' does not exist";
    found.directory = aside;
  }
  latest = std::move(found);
  return {};
}

std::string loadLatestCheckpoint(const std::string &loadDir, const LoadRequest &request, CheckpointInfo &info) {
  LatestCheckpoint latest;
  std::string error = findLatestCheckpoint(loadDir, latest);
  if (!error.empty())
    return error;
  CheckpointReader reader;
  if (!(error = reader.open(latest.directory)).empty())
    return error;
  if (!latest.release && reader.info().iteration != latest.iteration)
    return "checkpoint '" + latest.directory + "' records iteration " + std::to_string(reader.info().iteration) +
           ", but " + std::string(kLatestFileName) + " names iteration " + std::to_string(latest.iteration);
  if (!(error = reader.checkFingerprints(request.modelFingerprint, request.planFingerprint)).empty())
    return error;
  if (!(error = reader.readTensors(request.tensors)).empty())
    return error;
  info = reader.info();
  return {};
}

} // namespace megatron::ckpt
