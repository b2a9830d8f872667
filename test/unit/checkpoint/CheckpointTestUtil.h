//===- CheckpointTestUtil.h - Helpers of the checkpoint tests ---*- C++ -*-===//

#ifndef MEGATRON_TEST_UNIT_CHECKPOINT_CHECKPOINTTESTUTIL_H
#define MEGATRON_TEST_UNIT_CHECKPOINT_CHECKPOINTTESTUTIL_H

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/Checksum.h"
#include "runtime/checkpoint/Format.h"

#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace megatron::ckpt::test {

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/megatron-ckpt-XXXXXX";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    if (!::mkdtemp(name.data()))
      std::abort();
    path = name.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  std::string operator/(const std::string &name) const { return path + "/" + name; }

  std::string path;
};

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Replaces a file's contents. In place, without truncating it to zero first: ext4 flushes a file that was
/// truncated and rewritten when it is closed (auto_da_alloc), which would make the tests slow.
inline void writeFile(const std::string &path, const std::string &contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0666);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, contents.data(), contents.size(), 0), static_cast<ssize_t>(contents.size()));
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(contents.size())), 0);
  ::close(fd);
}

inline bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// The names in a directory, "." and ".." left out.
inline std::set<std::string> entries(const std::string &dir) {
  std::set<std::string> names;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (dirent *e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, ".."))
        names.insert(e->d_name);
    ::closedir(d);
  }
  return names;
}

/// Flips the bits of one byte of a file in place.
inline void flipByte(const std::string &path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  unsigned char c;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
  c ^= 0xff;
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

/// Replaces metadata.json of `dir` with `text` and rewrites the data file's header to match it, as a forger with
/// full knowledge of the format would: what the reader's own validation, not the checksum, must catch.
inline void forgeMetadata(const std::string &dir, const std::string &text) {
  writeFile(dir + "/" + std::string(kMetadataFileName), text);
  std::string dataPath = dir + "/" + std::string(kDataFileName);
  int fd = ::open(dataPath.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << dataPath;
  unsigned char bytes[kDataHeaderBytes];
  ASSERT_EQ(::pread(fd, bytes, kDataHeaderBytes, 0), static_cast<ssize_t>(kDataHeaderBytes));
  DataHeader header;
  ASSERT_EQ(decodeDataHeader(bytes, header), HeaderStatus::Ok);
  header.metadataBytes = text.size();
  header.metadataChecksum = checksum(text.data(), text.size());
  encodeDataHeader(header, bytes);
  ASSERT_EQ(::pwrite(fd, bytes, kDataHeaderBytes, 0), static_cast<ssize_t>(kDataHeaderBytes));
  ::close(fd);
}

/// Copies a directory tree (a checkpoint saved once, reused by many tests).
inline void copyTree(const std::string &from, const std::string &to) {
  std::error_code ec;
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
  ASSERT_FALSE(ec) << ec.message();
}

/// Deterministic pseudo-random bytes (splitmix64).
inline std::vector<unsigned char> randomBytes(size_t n, uint64_t seed) {
  std::vector<unsigned char> bytes(n);
  uint64_t x = seed;
  for (size_t i = 0; i < n; i += 8) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::memcpy(bytes.data() + i, &z, std::min<size_t>(8, n - i));
  }
  return bytes;
}

/// A tensor with its bytes, saved from and compared against.
struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;

  static OwnedTensor make(std::string name, DType dtype, std::vector<int64_t> shape, uint64_t seed) {
    uint64_t n = dtypeBytes(dtype);
    for (int64_t d : shape)
      n *= static_cast<uint64_t>(d);
    return {std::move(name), dtype, std::move(shape), randomBytes(n, seed)};
  }

  SaveTensor save() const { return SaveTensor{name, dtype, shape, bytes.data(), nullptr}; }
};

inline std::vector<SaveTensor> toSave(const std::vector<OwnedTensor> &tensors) {
  std::vector<SaveTensor> out;
  for (const OwnedTensor &t : tensors)
    out.push_back(t.save());
  return out;
}

/// A small model: a few tensors of several dtypes, optimizer state included.
inline std::vector<OwnedTensor> smallModel(uint64_t seed) {
  return {
      OwnedTensor::make("embedding.word_embeddings.weight", DType::F32, {64, 16}, seed + 1),
      OwnedTensor::make("decoder.layers.0.self_attention.linear_qkv.weight", DType::BF16, {48, 16}, seed + 2),
      OwnedTensor::make("decoder.final_layernorm.bias", DType::F32, {16}, seed + 3),
      OwnedTensor::make("optimizer.exp_avg.embedding.word_embeddings.weight", DType::F32, {64, 16}, seed + 4),
      OwnedTensor::make("optimizer.step", DType::I64, {}, seed + 5),
  };
}

inline CheckpointInfo infoFor(int64_t iteration) {
  CheckpointInfo info;
  info.iteration = iteration;
  info.modelFingerprint = "gpt-model-1234";
  info.planFingerprint = "plan-abcd";
  info.runState = {{"consumed_samples", iteration * 512},
                   {"seed", 1234},
                   {"lr_scheduler", {{"num_steps", iteration}, {"max_lr", 6e-4}}},
                   {"flags", {"--num-layers", "2", "--hidden-size", "16"}}};
  return info;
}

/// Loads every tensor of `expected` from the latest checkpoint of `dir` and compares bytes; "" when they match.
inline std::string loadAndCompare(const std::string &dir, const std::vector<OwnedTensor> &expected,
                                  CheckpointInfo *infoOut = nullptr) {
  std::vector<std::vector<unsigned char>> loaded;
  LoadRequest request;
  for (const OwnedTensor &t : expected)
    loaded.emplace_back(t.bytes.size(), 0xAB);
  for (size_t i = 0; i < expected.size(); ++i)
    request.tensors.push_back(LoadTensor{expected[i].name, expected[i].dtype, expected[i].shape, loaded[i].data(), nullptr});
  CheckpointInfo info;
  std::string error = loadLatestCheckpoint(dir, request, info);
  if (!error.empty())
    return error;
  for (size_t i = 0; i < expected.size(); ++i)
    if (loaded[i] != expected[i].bytes)
      return "tensor '" + expected[i].name + "' differs";
  if (infoOut)
    *infoOut = info;
  return {};
}

} // namespace megatron::ckpt::test

#endif // MEGATRON_TEST_UNIT_CHECKPOINT_CHECKPOINTTESTUTIL_H
