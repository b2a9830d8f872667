//===- Format.h - The data file's header and the latest file ----*- C++ -*-===//
//
// Internal to runtime/checkpoint. The binary side of the format: the 64-byte header at the start of
// model_optim_rng.bin, and the contents of latest_checkpointed_iteration.txt. All integers are little-endian.
//
//   offset  size  field
//        0     8  magic "MEGACKPT"
//        8     4  format version (u32)
//       12     4  header size in bytes (u32, 64)
//       16     8  data file size in bytes (u64), header included
//       24     8  number of tensors (u64)
//       32     8  iteration (u64)
//       40     8  size of metadata.json in bytes (u64)
//       48     8  XXH3-64 of metadata.json (u64)
//       56     8  XXH3-64 of bytes 0..55 of this header (u64)
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CHECKPOINT_FORMAT_H
#define MEGATRON_RUNTIME_CHECKPOINT_FORMAT_H

#include <cstdint>
#include <string>
#include <string_view>

namespace megatron::ckpt {

inline constexpr std::string_view kDataMagic = "MEGACKPT";
inline constexpr uint64_t kDataHeaderBytes = 64;

struct DataHeader {
  uint32_t version = 0;
  uint32_t headerBytes = kDataHeaderBytes;
  uint64_t dataBytes = 0;
  uint64_t tensorCount = 0;
  uint64_t iteration = 0;
  uint64_t metadataBytes = 0;
  uint64_t metadataChecksum = 0;
};

/// The header's 64 bytes, its own checksum included.
void encodeDataHeader(const DataHeader &header, unsigned char out[kDataHeaderBytes]);

enum class HeaderStatus { Ok, BadMagic, BadChecksum };
/// Decodes and checks the magic and the header's checksum.
HeaderStatus decodeDataHeader(const unsigned char in[kDataHeaderBytes], DataHeader &header);

/// The contents of latest_checkpointed_iteration.txt for `iteration` ("10\n").
std::string latestFileContents(int64_t iteration);

/// Parses the latest file as Megatron-LM does: an iteration number or "release", surrounding white space ignored.
/// False when it is neither.
bool parseLatestFile(std::string_view text, int64_t &iteration, bool &release);

/// The iteration of a directory named iter_NNNNNNN, or -1 for any other name.
int64_t iterationOfDirectoryName(std::string_view name);

} // namespace megatron::ckpt

#endif // MEGATRON_RUNTIME_CHECKPOINT_FORMAT_H
