//===- CheckpointWriter.cpp - Saving a checkpoint atomically --------------===//
//
// The protocol (docs/checkpoints.md):
//   1. remove what interrupted saves left in the save directory;
//   2. write the iteration under a temporary name in the save directory, .iter_NNNNNNN.tmp-<pid>-<n>/: the data
//      file streamed from the caller's memory (checksumming each piece as it goes), whose header receives
//      metadata.json's checksum, then metadata.json; fsync both files and the directory;
//   3. rename it to iter_NNNNNNN (an existing one is exchanged with it atomically, or renamed aside first where the
//      file system cannot exchange) and fsync the save directory;
//   4. replace latest_checkpointed_iteration.txt atomically (megatron::writeFileAtomically);
//   5. remove the replaced copy, if any.
// A crash before 3 leaves a temporary that loading ignores and the next save removes; after 3 the new checkpoint
// is complete; after 4 it is the latest.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Checkpoint.h"

#include "megatron/Support/AtomicFile.h"
#include "runtime/checkpoint/Checksum.h"
#include "runtime/checkpoint/FileIO.h"
#include "runtime/checkpoint/Format.h"
#include "runtime/checkpoint/Metadata.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <new>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_set>

namespace megatron::ckpt {

namespace {

/// Tensors are checksummed and written in pieces of this size, so that each piece is still in cache when it is
/// written, and a tensor produced through SaveTensor::read needs only this much memory.
constexpr size_t kChunkBytes = 2u << 20;

/// Writeback of the data file is started every this many bytes, so that the disk works while later tensors are
/// written, the final fsync has little left to do, and dirty pages do not pile up in memory.
constexpr uint64_t kWritebackBytes = 32u << 20;

/// Starts writing back [flushed, written) once it is kWritebackBytes long, without waiting for it (Linux's
/// sync_file_range; elsewhere, nothing: the final fsync does all).
void startWriteback(int fd, uint64_t written, uint64_t &flushed) {
  if (written - flushed < kWritebackBytes)
    return;
#ifdef SYNC_FILE_RANGE_WRITE
  ::sync_file_range(fd, static_cast<off_t>(flushed), static_cast<off_t>(written - flushed), SYNC_FILE_RANGE_WRITE);
#endif
  flushed = written;
}

/// Names of what an interrupted save leaves behind.
bool isTemporaryName(const std::string &name) {
  return name.rfind(".iter_", 0) == 0 && name.find(".tmp-") != std::string::npos;
}
std::string asideName(int64_t iteration) { return "." + iterationDirectoryName(iteration) + ".old"; }

class Saver {
public:
  Saver(const std::string &saveDir, const CheckpointInfo &info, const std::vector<SaveTensor> &tensors,
        const SaveOptions &options)
      : saveDir(saveDir), info(info), tensors(tensors), options(options) {}

  std::string run();

private:
  std::string fail(const std::string &why) const {
    return "cannot save checkpoint iteration " + std::to_string(info.iteration) + " to '" + saveDir + "': " + why;
  }
  void step(SaveStep s) const {
    if (options.afterStep)
      options.afterStep(s);
  }
  std::string validate() const;
  std::string prepareDirectory() const;
  void removeLeftovers() const;
  std::string makeTemporary(std::string &path) const;
  std::string writeData(const std::string &path, Metadata &metadata, std::string &metadataText) const;
  std::string writeNewFile(const std::string &path, const std::string &contents) const;
  std::string putInPlace(const std::string &temporary, std::string &replaced, bool &moved) const;

  const std::string &saveDir;
  const CheckpointInfo &info;
  const std::vector<SaveTensor> &tensors;
  const SaveOptions &options;
};

std::string Saver::validate() const {
  if (info.iteration < 0)
    return fail("the iteration is negative");
  if (!info.runState.is_null() && !info.runState.is_object())
    return fail(std::string("the run state must be a JSON object, not ") + info.runState.type_name());
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SaveTensor &t = tensors[i];
    if (t.name.empty())
      return fail("tensor #" + std::to_string(i) + " has no name");
    std::string label = "tensor '" + t.name + "'";
    if (!names.insert(t.name).second)
      return fail(label + " is given twice");
    if (dtypeBytes(t.dtype) == 0)
      return fail(label + " has an invalid dtype");
    uint64_t bytes = dtypeBytes(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0)
        return fail(label + " has a negative dimension in its shape " + shapeString(t.shape));
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes) || bytes > (uint64_t(1) << 62))
        return fail(label + " with shape " + shapeString(t.shape) + " is too large");
    }
    if (t.data && t.read)
      return fail(label + " has two sources: set SaveTensor::data or SaveTensor::read, not both");
    if (bytes && !t.data && !t.read)
      return fail(label + " has no source: set SaveTensor::data or SaveTensor::read");
  }
  return {};
}

std::string Saver::prepareDirectory() const {
  int error = 0;
  switch (pathKind(saveDir, error)) {
  case PathKind::Directory:
    return {};
  case PathKind::Other:
    return fail("it exists and is not a directory");
  case PathKind::Error:
    return fail(errorText(error));
  case PathKind::Missing:
    break;
  }
  std::error_code ec;
  std::filesystem::create_directories(saveDir, ec);
  if (ec)
    return fail("creating the directory: " + ec.message());
  // Make the new directory's entry durable too.
  std::string parent = std::filesystem::path(saveDir).lexically_normal().parent_path().string();
  fsyncDirectory(parent.empty() ? "." : parent);
  return {};
}

void Saver::removeLeftovers() const {
  std::error_code ec;
  std::filesystem::directory_iterator it(saveDir, ec), end;
  std::vector<std::string> names;
  for (; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  bool changed = false;
  for (const std::string &name : names) {
    std::string path = joinPath(saveDir, name);
    if (isTemporaryName(name) || name.rfind(std::string(kLatestFileName) + ".tmp.", 0) == 0) {
      changed |= removeTree(path).empty();
      continue;
    }
    // .iter_N.old: the old copy of an iteration being replaced without RENAME_EXCHANGE. If the save stopped
    // before the new copy took its place, the old one goes back; otherwise it is no longer needed.
    if (name.size() > 5 && name[0] == '.' && name.compare(name.size() - 4, 4, ".old") == 0) {
      int64_t iteration = iterationOfDirectoryName(name.substr(1, name.size() - 5));
      if (iteration < 0)
        continue;
      std::string final = iterationDirectory(saveDir, iteration);
      int error;
      if (pathKind(final, error) == PathKind::Missing)
        changed |= ::rename(path.c_str(), final.c_str()) == 0;
      else
        changed |= removeTree(path).empty();
    }
  }
  if (changed)
    fsyncDirectory(saveDir);
}

std::string Saver::makeTemporary(std::string &path) const {
  static std::atomic<unsigned> counter{0};
  std::string base = joinPath(saveDir, "." + iterationDirectoryName(info.iteration) + ".tmp-" +
                                           std::to_string(::getpid()) + "-");
  for (int attempt = 0;; ++attempt) {
    path = base + std::to_string(counter++);
    // mkdir applies the umask, so the checkpoint gets ordinary permissions.
    if (::mkdir(path.c_str(), 0777) == 0)
      return {};
    if (errno != EEXIST || attempt == 100)
      return fail("creating the temporary directory '" + path + "': " + errorText(errno));
  }
}

std::string Saver::writeData(const std::string &path, Metadata &metadata, std::string &metadataText) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0)
    return fail("creating '" + path + "': " + errorText(errno));
  auto abandon = [&](const std::string &why) {
    ::close(fd);
    return fail(why);
  };
  auto writeFailed = [&](int error) { return abandon("writing '" + path + "': " + errorText(error)); };

  static const unsigned char zeros[kAlignment] = {};
  uint64_t offset = kDataHeaderBytes;
  if (int error = writeAll(fd, zeros, kDataHeaderBytes)) // The header, written last, once the metadata exists.
    return writeFailed(error);

  std::unique_ptr<char[]> buffer;
  uint64_t flushed = 0;
  metadata.tensors.clear();
  metadata.tensors.reserve(tensors.size());
  for (const SaveTensor &t : tensors) {
    uint64_t padding = (kAlignment - offset % kAlignment) % kAlignment;
    if (int error = writeAll(fd, zeros, padding))
      return writeFailed(error);
    offset += padding;

    TensorRecord record;
    record.name = t.name;
    record.dtype = t.dtype;
    record.shape = t.shape;
    record.offset = offset;
    record.bytes = record.numElements() * dtypeBytes(t.dtype);
    Hasher hasher;
    for (uint64_t done = 0; done < record.bytes;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, record.bytes - done));
      const void *piece;
      if (t.data) {
        piece = static_cast<const char *>(t.data) + done;
      } else {
        if (!buffer)
          buffer.reset(new char[kChunkBytes]);
        std::string error = t.read(done, buffer.get(), n);
        if (!error.empty())
          return abandon("reading tensor '" + t.name + "' from its source: " + error);
        piece = buffer.get();
      }
      hasher.update(piece, n);
      if (int error = writeAll(fd, piece, n))
        return writeFailed(error);
      done += n;
      startWriteback(fd, offset + done, flushed);
    }
    record.checksum = hasher.digest();
    offset += record.bytes;
    metadata.tensors.push_back(std::move(record));
  }
  metadata.dataBytes = offset;

  std::string error = encodeMetadata(metadata, metadataText);
  if (!error.empty())
    return abandon(error);

  DataHeader header;
  header.version = static_cast<uint32_t>(kFormatVersion);
  header.dataBytes = metadata.dataBytes;
  header.tensorCount = metadata.tensors.size();
  header.iteration = static_cast<uint64_t>(info.iteration);
  header.metadataBytes = metadataText.size();
  header.metadataChecksum = checksum(metadataText.data(), metadataText.size());
  unsigned char bytes[kDataHeaderBytes];
  encodeDataHeader(header, bytes);
  if (int e = pwriteAll(fd, bytes, kDataHeaderBytes, 0))
    return writeFailed(e);
  if (::fsync(fd) != 0)
    return abandon("flushing '" + path + "' to disk: " + errorText(errno));
  if (::close(fd) != 0)
    return fail("closing '" + path + "': " + errorText(errno));
  return {};
}

/// A file in the temporary directory: nobody sees it before the directory is renamed, so it needs no temporary of
/// its own (megatron::writeFileAtomically is for the latest file, which readers do see).
std::string Saver::writeNewFile(const std::string &path, const std::string &contents) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0)
    return fail("creating '" + path + "': " + errorText(errno));
  if (int error = writeAll(fd, contents.data(), contents.size())) {
    ::close(fd);
    return fail("writing '" + path + "': " + errorText(error));
  }
  if (::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    return fail("flushing '" + path + "' to disk: " + errorText(error));
  }
  if (::close(fd) != 0)
    return fail("closing '" + path + "': " + errorText(errno));
  return {};
}

/// Renames the temporary to iter_N. `moved` tells whether it was (the temporary then no longer holds the new
/// checkpoint, and must not be removed on a later error); `replaced` names the old copy to remove afterwards.
std::string Saver::putInPlace(const std::string &temporary, std::string &replaced, bool &moved) const {
  std::string final = iterationDirectory(saveDir, info.iteration);
  int error = 0;
  PathKind kind = pathKind(final, error);
  if (kind == PathKind::Other)
    return fail("'" + final + "' exists and is not a directory");
  if (kind == PathKind::Error)
    return fail("'" + final + "': " + errorText(error));

  if (kind == PathKind::Missing) {
    if (::rename(temporary.c_str(), final.c_str()) != 0)
      return fail("renaming '" + temporary + "' to '" + final + "': " + errorText(errno));
    moved = true;
  } else {
    bool exchanged = false;
#ifdef RENAME_EXCHANGE
    if (options.allowRenameExchange) {
      if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, final.c_str(), RENAME_EXCHANGE) == 0) {
        exchanged = moved = true;
        replaced = temporary; // Now holds the old copy.
      } else if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP) {
        return fail("exchanging '" + temporary + "' with '" + final + "': " + errorText(errno));
      }
    }
#endif
    if (!exchanged) {
      // No atomic exchange: rename the old copy aside under a fixed name that loading falls back to and the next
      // save restores, so that a crash between the two renames loses nothing.
      std::string aside = joinPath(saveDir, asideName(info.iteration));
      if (::rename(final.c_str(), aside.c_str()) != 0)
        return fail("renaming '" + final + "' aside: " + errorText(errno));
      if (int e = fsyncDirectory(saveDir)) {
        ::rename(aside.c_str(), final.c_str());
        return fail("flushing '" + saveDir + "' to disk: " + errorText(e));
      }
      step(SaveStep::OldMovedAside);
      if (::rename(temporary.c_str(), final.c_str()) != 0) {
        int e = errno;
        ::rename(aside.c_str(), final.c_str());
        return fail("renaming '" + temporary + "' to '" + final + "': " + errorText(e));
      }
      replaced = aside;
      moved = true;
    }
  }
  if (int e = fsyncDirectory(saveDir))
    return fail("flushing '" + saveDir + "' to disk after renaming: " + errorText(e));
  return {};
}

std::string Saver::run() {
  std::string error = validate();
  if (error.empty())
    error = prepareDirectory();
  if (!error.empty())
    return error;
  removeLeftovers();

  std::string temporary;
  if (!(error = makeTemporary(temporary)).empty())
    return error;
  auto abandon = [&](std::string why) {
    removeTree(temporary);
    return why;
  };

  Metadata metadata;
  metadata.info = info;
  std::string metadataText;
  if (!(error = writeData(joinPath(temporary, std::string(kDataFileName)), metadata, metadataText)).empty())
    return abandon(error);
  if (!(error = writeNewFile(joinPath(temporary, std::string(kMetadataFileName)), metadataText)).empty())
    return abandon(error);
  if (int e = fsyncDirectory(temporary))
    return abandon(fail("flushing '" + temporary + "' to disk: " + errorText(e)));
  step(SaveStep::TemporaryWritten);

  std::string replaced;
  bool moved = false;
  if (!(error = putInPlace(temporary, replaced, moved)).empty())
    return moved ? error : abandon(error);
  step(SaveStep::Renamed);

  if (options.updateLatest) {
    std::string latest = joinPath(saveDir, std::string(kLatestFileName));
    error = writeFileAtomically(latest, latestFileContents(info.iteration));
    if (!error.empty()) {
      if (!replaced.empty())
        removeTree(replaced);
      return fail("the checkpoint is complete in '" + iterationDirectory(saveDir, info.iteration) +
                  "', but the latest file was not updated: " + error);
    }
    step(SaveStep::LatestUpdated);
  }

  // The old copy of a replaced iteration. Failing to remove it, or a crash that undoes the removal, loses nothing:
  // the next save removes it.
  if (!replaced.empty())
    removeTree(replaced);
  step(SaveStep::Done);
  return {};
}

} // namespace

std::string saveCheckpoint(const std::string &saveDir, const CheckpointInfo &info,
                           const std::vector<SaveTensor> &tensors, const SaveOptions &options) {
  std::string context = "cannot save checkpoint iteration " + std::to_string(info.iteration);
  if (saveDir.empty())
    return context + ": the save directory is empty";
  try {
    return Saver(saveDir, info, tensors, options).run();
  } catch (const std::bad_alloc &) { // Still a message, not a crash (a temporary may be left for the next save).
    return context + " to '" + saveDir + "': out of memory";
  }
}

} // namespace megatron::ckpt
