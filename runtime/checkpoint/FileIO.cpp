//===- FileIO.cpp - POSIX file helpers of the checkpoint library ----------===//

#include "runtime/checkpoint/FileIO.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace megatron::ckpt {

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string errorText(int error) { return std::strerror(error); }

int writeAll(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (n == 0)
      return EIO;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

int pwriteAll(int fd, const void *data, size_t size, uint64_t offset) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (n == 0)
      return EIO;
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

int preadAll(int fd, void *data, size_t size, uint64_t offset, size_t &got) {
  char *p = static_cast<char *>(data);
  got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, p + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (n == 0)
      break;
    got += static_cast<size_t>(n);
  }
  return 0;
}

int readWholeFile(const std::string &path, std::string &contents) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int error = errno;
    ::close(fd);
    return error;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return EISDIR;
  }
  contents.clear();
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int error = errno;
      ::close(fd);
      return error;
    }
    if (n == 0)
      break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return 0;
}

int fsyncDirectory(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int error = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return error == EINVAL ? 0 : error;
}

PathKind pathKind(const std::string &path, int &error) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    error = errno;
    return error == ENOENT ? PathKind::Missing : PathKind::Error;
  }
  return S_ISDIR(st.st_mode) ? PathKind::Directory : PathKind::Other;
}

std::string removeTree(const std::string &path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec)
    return "cannot remove '" + path + "': " + ec.message();
  return {};
}

} // namespace megatron::ckpt
