//===- Checksum.h - XXH3-64 checksums of checkpoint contents ----*- C++ -*-===//
//
// Internal to runtime/checkpoint. Every tensor's bytes and the metadata file are checksummed with XXH3-64
// (libxxhash): 64 bits, well beyond 10 GB/s per core, so verifying a checkpoint costs far less than reading it.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_CHECKPOINT_CHECKSUM_H
#define MEGATRON_RUNTIME_CHECKPOINT_CHECKSUM_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace megatron::ckpt {

/// The metadata's "checksum" field: the algorithm of every checksum in the checkpoint.
inline constexpr std::string_view kChecksumName = "xxh3-64";

/// XXH3-64 of `size` bytes.
uint64_t checksum(const void *data, size_t size);

/// XXH3-64 of bytes given in pieces: the same value as checksum() of their concatenation.
class Hasher {
public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher &) = delete;
  Hasher &operator=(const Hasher &) = delete;

  void update(const void *data, size_t size);
  uint64_t digest() const;

private:
  void *state; // XXH3_state_t, which needs 64-byte alignment.
};

/// 16 lowercase hex digits, as the metadata stores checksums.
std::string checksumHex(uint64_t value);
/// The inverse of checksumHex (either case); nullopt unless exactly 16 hex digits.
std::optional<uint64_t> parseChecksumHex(std::string_view text);

} // namespace megatron::ckpt

#endif // MEGATRON_RUNTIME_CHECKPOINT_CHECKSUM_H
