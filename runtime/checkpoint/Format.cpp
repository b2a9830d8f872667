//===- Format.cpp - Names, dtypes, the data file's header, the latest file ===//

#include "runtime/checkpoint/Format.h"

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/Checksum.h"

#include <cstdio>
#include <cstring>

namespace megatron::ckpt {

//===----------------------------------------------------------------------===//
// Dtypes and names
//===----------------------------------------------------------------------===//

namespace {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  uint64_t bytes;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "f32", 4},  {DType::F64, "f64", 8}, {DType::BF16, "bf16", 2}, {DType::F16, "f16", 2},
    {DType::I32, "i32", 4},  {DType::I64, "i64", 8}, {DType::U8, "u8", 1},
};
} // namespace

std::string_view dtypeName(DType dtype) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == dtype)
      return info.name;
  return "invalid";
}

std::optional<DType> parseDType(std::string_view name) {
  for (const DTypeInfo &info : kDTypes)
    if (info.name == name)
      return info.dtype;
  return std::nullopt;
}

uint64_t dtypeBytes(DType dtype) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == dtype)
      return info.bytes;
  return 0;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string iterationDirectoryName(int64_t iteration) {
  char name[32];
  std::snprintf(name, sizeof name, "iter_%07lld", static_cast<long long>(iteration));
  return name;
}

std::string iterationDirectory(const std::string &saveDir, int64_t iteration) {
  if (saveDir.empty() || saveDir.back() == '/')
    return saveDir + iterationDirectoryName(iteration);
  return saveDir + "/" + iterationDirectoryName(iteration);
}

int64_t iterationOfDirectoryName(std::string_view name) {
  if (name.substr(0, 5) != "iter_" || name.size() < 12 || name.size() > 23)
    return -1;
  int64_t iteration = 0;
  for (char c : name.substr(5)) {
    if (c < '0' || c > '9')
      return -1;
    iteration = iteration * 10 + (c - '0');
  }
  return iterationDirectoryName(iteration) == name ? iteration : -1;
}

//===----------------------------------------------------------------------===//
// The data file's header
//===----------------------------------------------------------------------===//

namespace {
void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
} // namespace

static_assert(kDataHeaderBytes == kAlignment, "tensors start right after the header");

void encodeDataHeader(const DataHeader &header, unsigned char out[kDataHeaderBytes]) {
  std::memcpy(out, kDataMagic.data(), 8);
  put32(out + 8, header.version);
  put32(out + 12, header.headerBytes);
  put64(out + 16, header.dataBytes);
  put64(out + 24, header.tensorCount);
  put64(out + 32, header.iteration);
  put64(out + 40, header.metadataBytes);
  put64(out + 48, header.metadataChecksum);
  put64(out + 56, checksum(out, 56));
}

HeaderStatus decodeDataHeader(const unsigned char in[kDataHeaderBytes], DataHeader &header) {
  if (std::memcmp(in, kDataMagic.data(), 8) != 0)
    return HeaderStatus::BadMagic;
  if (get64(in + 56) != checksum(in, 56))
    return HeaderStatus::BadChecksum;
  header.version = get32(in + 8);
  header.headerBytes = get32(in + 12);
  header.dataBytes = get64(in + 16);
  header.tensorCount = get64(in + 24);
  header.iteration = get64(in + 32);
  header.metadataBytes = get64(in + 40);
  header.metadataChecksum = get64(in + 48);
  return HeaderStatus::Ok;
}

//===----------------------------------------------------------------------===//
// The latest file
//===----------------------------------------------------------------------===//

std::string latestFileContents(int64_t iteration) { return std::to_string(iteration) + "\n"; }

bool parseLatestFile(std::string_view text, int64_t &iteration, bool &release) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && space(text.back()))
    text.remove_suffix(1);
  if (text == "release") {
    iteration = 0;
    release = true;
    return true;
  }
  if (text.empty() || text.size() > 18)
    return false;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return false;
    value = value * 10 + (c - '0');
  }
  iteration = value;
  release = false;
  return true;
}

} // namespace megatron::ckpt
