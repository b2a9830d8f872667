//===- FileIO.h - POSIX file helpers of the checkpoint library --*- C++ -*-===//
//
// Internal to runtime/checkpoint. Thin wrappers that retry on EINTR and short transfers and report errno, so that
// the writer and the reader can turn every failure into a message naming the file.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CHECKPOINT_FILEIO_H
#define MEGATRON_RUNTIME_CHECKPOINT_FILEIO_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace megatron::ckpt {

/// "a/b" (no doubled slash when `dir` ends with one).
std::string joinPath(const std::string &dir, const std::string &name);

/// strerror(error).
std::string errorText(int error);

/// Writes all `size` bytes; 0 or an errno.
int writeAll(int fd, const void *data, size_t size);
/// pwrite()s all `size` bytes at `offset`; 0 or an errno.
int pwriteAll(int fd, const void *data, size_t size, uint64_t offset);
/// pread()s up to `size` bytes at `offset`, stopping early only at the end of the file. Sets `got` to the bytes
/// read; 0 or an errno.
int preadAll(int fd, void *data, size_t size, uint64_t offset, size_t &got);

/// Reads a whole (small) file; 0 or an errno.
int readWholeFile(const std::string &path, std::string &contents);

/// fsync()s a directory, so that the entries created, renamed or removed in it are durable; 0 or an errno.
/// File systems that cannot sync directories (EINVAL) count as success.
int fsyncDirectory(const std::string &path);

enum class PathKind { Missing, Directory, Other, Error };
/// What `path` is (following symbolic links); `error` is set for PathKind::Error.
PathKind pathKind(const std::string &path, int &error);

/// Removes a file or a directory tree; "" or a message. A missing path is not an error.
std::string removeTree(const std::string &path);

} // namespace megatron::ckpt

#endif // MEGATRON_RUNTIME_CHECKPOINT_FILEIO_H
