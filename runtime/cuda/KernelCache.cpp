//===- KernelCache.cpp - Compiled kernels on disk, keyed by what made them ------===//
//
// Entry layout (little-endian): the 8-byte magic "MTKCACH1", the 16-byte XXH3-128 of the key text, the payload's
// size (u64) and its XXH3-64 (u64), then the payload. A reader accepts an entry only if all four agree with the
// file, so a torn or bit-flipped file, or a hash collision of file names, costs one recompilation and nothing
// else.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/KernelCache.h"

#include "megatron/Support/AtomicFile.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <xxhash.h>

namespace megatron::cuda {

namespace {

constexpr char kMagic[8] = {'M', 'T', 'K', 'C', 'A', 'C', 'H', '1'};
constexpr size_t kHeaderBytes = sizeof kMagic + 16 + 8 + 8;

struct Key {
  uint64_t high = 0, low = 0;
};

Key hashKey(const std::string &text) {
  XXH128_hash_t hash = XXH3_128bits(text.data(), text.size());
  return Key{hash.high64, hash.low64};
}

void putU64(std::string &out, uint64_t value) {
  for (int i = 0; i < 8; ++i)
    out.push_back(char((value >> (8 * i)) & 0xff));
}

uint64_t getU64(const std::string &in, size_t at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= uint64_t(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return value;
}

std::string encode(const Key &key, const std::string &payload) {
  std::string entry(kMagic, sizeof kMagic);
  putU64(entry, key.high);
  putU64(entry, key.low);
  putU64(entry, payload.size());
  putU64(entry, XXH3_64bits(payload.data(), payload.size()));
  return entry + payload;
}

/// The payload of a valid entry for `key`, else nullopt.
std::optional<std::string> decode(const Key &key, const std::string &entry) {
  if (entry.size() < kHeaderBytes || std::memcmp(entry.data(), kMagic, sizeof kMagic) != 0)
    return std::nullopt;
  if (getU64(entry, 8) != key.high || getU64(entry, 16) != key.low)
    return std::nullopt;
  const uint64_t size = getU64(entry, 24), checksum = getU64(entry, 32);
  if (size != entry.size() - kHeaderBytes)
    return std::nullopt;
  std::string payload = entry.substr(kHeaderBytes);
  if (XXH3_64bits(payload.data(), payload.size()) != checksum)
    return std::nullopt;
  return payload;
}

std::optional<std::string> readWhole(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

} // namespace

KernelCache::KernelCache(std::string directory) : dir(std::move(directory)) {}

std::string KernelCache::defaultDirectory() {
  if (const char *explicitDir = std::getenv("MEGATRON_KERNEL_CACHE"); explicitDir && *explicitDir)
    return explicitDir;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/megatron/kernels";
  const char *home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/megatron/kernels";
}

std::string KernelCache::keyOf(const std::string &source, const CompileOptions &options) {
  // Fields separated by NUL, which none of them contains, so different fields never run together.
  std::string text = "nvrtc " + nvrtcVersion() + '\0' + (options.kind == CodeKind::Ptx ? "ptx" : "cubin") + '\0';
  for (const std::string &option : nvrtcOptions(options))
    text += option + '\0';
  return text + '\0' + source;
}

std::string KernelCache::entryPath(const std::string &name, const std::string &keyText) const {
  const Key key = hashKey(keyText);
  char hex[40];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(key.high),
                static_cast<unsigned long long>(key.low));
  return dir + "/" + name + "-" + hex + ".bin";
}

std::optional<std::string> KernelCache::getOrCompile(const std::string &name, const std::string &keyText,
                                                     const Compiler &compile, std::string &error) {
  const Key key = hashKey(keyText);
  const std::string path = entryPath(name, keyText);
  if (std::optional<std::string> entry = readWhole(path)) {
    if (std::optional<std::string> payload = decode(key, *entry)) {
      ++hitCount;
      return payload;
    }
    ++rejectedCount;
  }
  ++missCount;
  std::optional<std::string> code = compile(error);
  if (!code)
    return std::nullopt;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string writeProblem =
      ec ? "cannot create the kernel cache " + dir + ": " + ec.message() : writeFileAtomically(path, encode(key, *code));
  if (!writeProblem.empty()) {
    ++writeFailureCount;
    std::lock_guard<std::mutex> lock(writeErrorMutex);
    writeError = writeProblem;
  }
  return code;
}

std::string KernelCache::lastWriteError() const {
  std::lock_guard<std::mutex> lock(writeErrorMutex);
  return writeError;
}

std::optional<std::string> KernelCache::compile(const std::string &name, const std::string &source,
                                                const CompileOptions &options, std::string &error) {
  return getOrCompile(name, keyOf(source, options),
                      [&](std::string &compileError) { return compileKernel(name, source, options, compileError); },
                      error);
}

} // namespace megatron::cuda
