//===- KernelCache.h - Compiled kernels on disk, keyed by what made them -*- C++ -*-===//
//
// NVRTC takes 30-100 ms per kernel, and a model has dozens to hundreds of distinct kernels, so compiled code is
// kept on disk between runs. An entry's key is a 128-bit XXH3 of everything that determines the code: the
// source, the complete NVRTC option list (architecture included), the NVRTC version and the kind of code. Each
// entry carries its key, its size and an XXH3 checksum of its payload; an entry that is truncated, damaged or
// belongs to another key is never used: it is compiled again and replaced. Entries are written to a temporary
// file and renamed (megatron::writeFileAtomically), so concurrent runs sharing a cache see whole entries only.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CUDA_KERNELCACHE_H
#define MEGATRON_RUNTIME_CUDA_KERNELCACHE_H

#include "runtime/cuda/Nvrtc.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace megatron::cuda {

/// Thread-safe: several threads may compile through one cache (NVRTC is thread-safe too).
class KernelCache {
public:
  /// A cache in `directory`, created when the first entry is written.
  explicit KernelCache(std::string directory);

  /// $MEGATRON_KERNEL_CACHE if set, else $XDG_CACHE_HOME/megatron/kernels, else ~/.cache/megatron/kernels.
  static std::string defaultDirectory();

  /// The code for `keyText` (see keyOf): the entry's payload when a valid one exists, otherwise what `compile`
  /// returns, which is then stored. On failure returns nullopt with `error` set by `compile`. Failing to write the
  /// entry is not an error (the code is returned); writeFailures() counts it and lastWriteError() says why.
  using Compiler = std::function<std::optional<std::string>(std::string &error)>;
  std::optional<std::string> getOrCompile(const std::string &name, const std::string &keyText,
                                          const Compiler &compile, std::string &error);

  /// Compiles a kernel with NVRTC through the cache.
  std::optional<std::string> compile(const std::string &name, const std::string &source,
                                     const CompileOptions &options, std::string &error);

  /// The text whose hash keys an NVRTC compilation: source, options, NVRTC version and code kind.
  static std::string keyOf(const std::string &source, const CompileOptions &options);
  /// The file that holds `name`'s entry for `keyText`: <directory>/<name>-<32 hex digits of the key>.bin.
  std::string entryPath(const std::string &name, const std::string &keyText) const;

  const std::string &directory() const { return dir; }
  int hits() const { return hitCount; }
  int misses() const { return missCount; }
  /// Entries found but refused (truncated, damaged, another key) and replaced.
  int rejected() const { return rejectedCount; }
  int writeFailures() const { return writeFailureCount; }
  std::string lastWriteError() const;

private:
  std::string dir;
  std::atomic<int> hitCount{0}, missCount{0}, rejectedCount{0}, writeFailureCount{0};
  mutable std::mutex writeErrorMutex;
  std::string writeError;
};

} // namespace megatron::cuda

#endif // MEGATRON_RUNTIME_CUDA_KERNELCACHE_H
