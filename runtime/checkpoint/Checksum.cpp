//===- Checksum.cpp - XXH3-64 checksums of checkpoint contents ------------===//

#include "runtime/checkpoint/Checksum.h"

#include <cstdio>
#include <new>

// On x86-64, libxxhash's *_dispatch entry points pick the widest vector unit (AVX2, AVX-512) at run time; the
// header maps the ordinary names onto them.
#if defined(__x86_64__) || defined(_M_X64)
#include <xxh_x86dispatch.h>
#endif
#include <xxhash.h>

namespace megatron::ckpt {

uint64_t checksum(const void *data, size_t size) { return XXH3_64bits(data, size); }

Hasher::Hasher() : state(XXH3_createState()) {
  if (!state)
    throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t *>(state));
}

Hasher::~Hasher() { XXH3_freeState(static_cast<XXH3_state_t *>(state)); }

void Hasher::update(const void *data, size_t size) {
  if (size)
    XXH3_64bits_update(static_cast<XXH3_state_t *>(state), data, size);
}

uint64_t Hasher::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t *>(state)); }

std::string checksumHex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::optional<uint64_t> parseChecksumHex(std::string_view text) {
  if (text.size() != 16)
    return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return std::nullopt;
    value = value << 4 | static_cast<uint64_t>(digit);
  }
  return value;
}

} // namespace megatron::ckpt
