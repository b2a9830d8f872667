//===- IndexCache.cpp - GPT dataset indices saved beside the data ----------===//
//
// File layout, little-endian: "MTGPTIDX", u32 version 1, u64 description bytes, the description, then for the
// document (i32), sample (i64) and shuffle (i64) indices a u64 count and the elements; last, a u64 FNV-1a of all
// that precedes it, so that a damaged file is told from a good one.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/IndexCache.h"

#include "megatron/Support/AtomicFile.h"
#include "megatron/Support/Fnv.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace megatron::data {

namespace {

constexpr char kMagic[8] = {'M', 'T', 'G', 'P', 'T', 'I', 'D', 'X'};
constexpr uint32_t kVersion = 1;

template <typename T> void put(std::string &out, const T &value) {
  out.append(reinterpret_cast<const char *>(&value), sizeof(T));
}
template <typename T> void putArray(std::string &out, const std::vector<T> &values) {
  put(out, static_cast<uint64_t>(values.size()));
  out.append(reinterpret_cast<const char *>(values.data()), values.size() * sizeof(T));
}

/// Reads from a byte range, refusing to go past its end.
struct Reader {
  const std::string &bytes;
  size_t at = 0;
  template <typename T> bool get(T &value) {
    if (bytes.size() - at < sizeof(T))
      return false;
    std::memcpy(&value, bytes.data() + at, sizeof(T));
    at += sizeof(T);
    return true;
  }
  template <typename T> bool getArray(std::vector<T> &values) {
    uint64_t count = 0;
    if (!get(count) || count > (bytes.size() - at) / sizeof(T))
      return false;
    values.resize(static_cast<size_t>(count));
    std::memcpy(values.data(), bytes.data() + at, static_cast<size_t>(count) * sizeof(T));
    at += static_cast<size_t>(count) * sizeof(T);
    return true;
  }
};

} // namespace

std::string indexCachePath(const std::string &directory, const std::string &description) {
  char name[64];
  std::snprintf(name, sizeof name, "%016llx-GPTDataset-indices.bin",
                static_cast<unsigned long long>(fnv1a(description)));
  return (std::filesystem::path(directory) / name).string();
}

std::optional<GptIndices> readIndexCache(const std::string &path, const std::string &description, std::string &why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "no cache yet";
    return std::nullopt;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string bytes = buffer.str();
  uint64_t checksum = 0;
  if (bytes.size() < sizeof checksum) {
    why = "the cache file is truncated";
    return std::nullopt;
  }
  std::memcpy(&checksum, bytes.data() + bytes.size() - sizeof checksum, sizeof checksum);
  bytes.resize(bytes.size() - sizeof checksum);
  if (fnv1a(bytes) != checksum) {
    why = "the cache file is damaged";
    return std::nullopt;
  }
  Reader reader{bytes};
  char magic[8];
  uint32_t version = 0;
  uint64_t length = 0;
  for (char &c : magic)
    if (!reader.get(c)) {
      why = "the cache file is truncated";
      return std::nullopt;
    }
  if (std::memcmp(magic, kMagic, sizeof magic) != 0 || !reader.get(version) || version != kVersion ||
      !reader.get(length) || length > bytes.size() - reader.at) {
    why = "the cache file is not one this version writes";
    return std::nullopt;
  }
  if (bytes.compare(reader.at, static_cast<size_t>(length), description) != 0 || length != description.size()) {
    why = "the cache file describes other indices";
    return std::nullopt;
  }
  reader.at += static_cast<size_t>(length);
  GptIndices indices;
  if (!reader.getArray(indices.document) || !reader.getArray(indices.sample) || !reader.getArray(indices.shuffle) ||
      reader.at != bytes.size() || indices.sample.size() < 2 || indices.sample.size() % 2 != 0 ||
      static_cast<int64_t>(indices.shuffle.size()) != indices.numSamples()) {
    why = "the cache file is damaged";
    return std::nullopt;
  }
  // Every index must point inside the arrays it indexes, so that a damaged file cannot send a read astray.
  for (int64_t j : indices.shuffle)
    if (j < 0 || j >= indices.numSamples()) {
      why = "the cache file is damaged";
      return std::nullopt;
    }
  for (size_t k = 0; k < indices.sample.size(); k += 2)
    if (indices.sample[k] < 0 || indices.sample[k] >= static_cast<int64_t>(indices.document.size()) ||
        indices.sample[k + 1] < 0) {
      why = "the cache file is damaged";
      return std::nullopt;
    }
  return indices;
}

std::string writeIndexCache(const std::string &path, const std::string &description, const GptIndices &indices) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec)
    return "cannot create the index cache directory '" + std::filesystem::path(path).parent_path().string() +
           "': " + ec.message();
  std::string out(kMagic, sizeof kMagic);
  put(out, kVersion);
  put(out, static_cast<uint64_t>(description.size()));
  out += description;
  putArray(out, indices.document);
  putArray(out, indices.sample);
  putArray(out, indices.shuffle);
  put(out, fnv1a(out));
  return writeFileAtomically(path, out);
}

} // namespace megatron::data
