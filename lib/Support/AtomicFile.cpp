//===- AtomicFile.cpp - Replace a file all at once, or not at all ----------===//

#include "megatron/Support/AtomicFile.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace megatron {

namespace {
std::string failure(const std::string &path, const char *what, int error) {
  return "cannot write '" + path + "': " + what + ": " + std::strerror(error);
}

std::string directoryOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}
} // namespace

/// Writes `contents` to `fd` completely; false with errno set on failure.
static bool writeAll(int fd, std::string_view contents) {
  const char *data = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data += written;
    left -= static_cast<size_t>(written);
  }
  return true;
}

/// A target that is not a regular file (/dev/null, /dev/stdout, a FIFO) cannot be replaced by renaming, and must
/// not be: as root, a rename over /dev/null would turn the device into a file. Such targets are written in place.
static std::string writeInPlace(const std::string &path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0)
    return failure(path, "opening", errno);
  if (!writeAll(fd, contents)) {
    int error = errno;
    ::close(fd);
    return failure(path, "writing", error);
  }
  if (::close(fd) != 0)
    return failure(path, "closing", errno);
  return {};
}

std::string writeFileAtomically(const std::string &requestedPath, std::string_view contents) {
  std::string path = requestedPath;
  struct stat target;
  if (::stat(requestedPath.c_str(), &target) == 0) {
    if (S_ISDIR(target.st_mode))
      return "cannot write '" + requestedPath + "': it is a directory";
    if (!S_ISREG(target.st_mode))
      return writeInPlace(requestedPath, contents);
    // Replace what a symbolic link points to, not the link itself.
    if (char *resolved = ::realpath(requestedPath.c_str(), nullptr)) {
      path = resolved;
      std::free(resolved);
    }
  }

  // The temporary lives in the target's directory so that rename() stays within one file system.
  std::string pattern = path + ".tmp.XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0)
    return failure(path, "creating a temporary file", errno);
  std::string tempPath(name.data());

  auto abandon = [&](const char *what) {
    int error = errno;
    ::close(fd);
    ::unlink(tempPath.c_str());
    return failure(path, what, error);
  };

  if (!writeAll(fd, contents))
    return abandon("writing");
  // mkstemp creates 0600; give the file the permissions an ordinary create would (0666 less the umask).
  mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0)
    return abandon("setting permissions");
  if (::fsync(fd) != 0)
    return abandon("flushing to disk");
  if (::close(fd) != 0) {
    int error = errno;
    ::unlink(tempPath.c_str());
    return failure(path, "closing", error);
  }
  if (::rename(tempPath.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(tempPath.c_str());
    return failure(path, "renaming into place", error);
  }
  // Make the rename itself durable.
  int dirFd = ::open(directoryOf(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
  return {};
}

std::string writeOutput(const std::string &path, std::string_view contents) {
  if (path != "-")
    return writeFileAtomically(path, contents);
  if (std::fwrite(contents.data(), 1, contents.size(), stdout) != contents.size() || std::fflush(stdout) != 0)
    return std::string("cannot write to standard output: ") + std::strerror(errno);
  return {};
}

} // namespace megatron
