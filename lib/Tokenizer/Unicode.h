//===- Unicode.h - UTF-8 decoding and GPT-2's character classes -*- C++ -*-===//
//
// Internal to MegatronTokenizer. The classes are those GPT-2's pattern tests: \s (White_Space), \p{L}, \p{N},
// and the rest. ICU answers them; the Basic Multilingual Plane is tabulated from ICU once, so the hot path reads a
// byte from a table (docs/tokenizer.md).
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_LIB_TOKENIZER_UNICODE_H
#define MEGATRON_LIB_TOKENIZER_UNICODE_H

#include <cstddef>
#include <cstdint>

namespace megatron::tokenizer::detail {

enum CharClass : uint8_t {
  kSpace = 0,  // \s
  kLetter = 1, // \p{L}
  kNumber = 2, // \p{N}
  kOther = 3,  // [^\s\p{L}\p{N}]
  kInvalid = 4 // a byte that does not begin a well-formed UTF-8 sequence (it stands alone)
};

/// The class of a code point (from ICU; the BMP from a table built on first use).
CharClass classOfCodePoint(char32_t c);

/// The class table of the BMP, built on first use (thread-safe).
const uint8_t *bmpClassTable();

/// Decodes the well-formed UTF-8 sequence at s[i] (Unicode's Table 3-7: no overlongs, no surrogates, nothing
/// above U+10FFFF). Returns its length in bytes and sets `cp`; returns 0 when s[i] does not begin one.
inline unsigned decodeUtf8(const uint8_t *s, size_t n, size_t i, char32_t &cp) {
  uint8_t b0 = s[i];
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t left = n - i;
  auto cont = [&](size_t k) { return (s[i + k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (left < 2 || !cont(1))
      return 0;
    cp = (char32_t(b0 & 0x1F) << 6) | (s[i + 1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3)
      return 0;
    uint8_t b1 = s[i + 1];
    uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;
    uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;
    if (b1 < lo || b1 > hi || !cont(2))
      return 0;
    cp = (char32_t(b0 & 0x0F) << 12) | (char32_t(b1 & 0x3F) << 6) | (s[i + 2] & 0x3F);
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4)
      return 0;
    uint8_t b1 = s[i + 1];
    uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;
    uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (b1 < lo || b1 > hi || !cont(2) || !cont(3))
      return 0;
    cp = (char32_t(b0 & 0x07) << 18) | (char32_t(b1 & 0x3F) << 12) | (char32_t(s[i + 2] & 0x3F) << 6) |
         (s[i + 3] & 0x3F);
    return 4;
  }
  return 0;
}

/// The class of the character at s[i] and its length in bytes (1 for an invalid byte).
inline CharClass classAt(const uint8_t *table, const uint8_t *s, size_t n, size_t i, unsigned &len) {
  uint8_t b0 = s[i];
  if (b0 < 0x80) {
    len = 1;
    return CharClass(table[b0]);
  }
  char32_t cp;
  len = decodeUtf8(s, n, i, cp);
  if (len == 0) {
    len = 1;
    return kInvalid;
  }
  if (cp < 0x10000)
    return CharClass(table[cp]);
  return classOfCodePoint(cp);
}

/// The length in bytes of GPT-2's next pre-token at s[i] (i < n): the pattern
/// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ matched at i, alternatives tried in
/// order as a backtracking engine does. An invalid byte matches no alternative and is a piece of its own; as the
/// lookahead's \S it counts as a non-space.
inline size_t nextPieceLength(const uint8_t *table, const uint8_t *s, size_t n, size_t i) {
  unsigned len0;
  CharClass c0 = classAt(table, s, n, i, len0);
  if (c0 == kInvalid)
    return 1;
  if (s[i] == '\'' && i + 1 < n) {
    uint8_t c = s[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd')
      return 2;
    if (i + 2 < n) {
      uint8_t d = s[i + 2];
      if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
        return 3;
    }
  }
  size_t j = i;
  CharClass run = c0;
  if (s[i] == ' ' && i + 1 < n) {
    unsigned len1;
    CharClass c1 = classAt(table, s, n, i + 1, len1);
    if (c1 == kLetter || c1 == kNumber || c1 == kOther) {
      run = c1;
      j = i + 1;
    }
  }
  if (run != kSpace) {
    // ` ?\p{L}+`, ` ?\p{N}+` or ` ?[^\s\p{L}\p{N}]+`: the longest run of one class.
    size_t k = j;
    while (k < n) {
      unsigned len;
      if (classAt(table, s, n, k, len) != run)
        break;
      k += len;
    }
    return k - i;
  }
  // Whitespace: `\s+(?!\S)` takes the run, or all of it but its last character when a non-space follows;
  // `\s+` takes a lone whitespace character before a non-space.
  size_t k = i, last = i;
  while (k < n) {
    unsigned len;
    if (classAt(table, s, n, k, len) != kSpace)
      break;
    last = k;
    k += len;
  }
  if (k == n)
    return n - i;
  if (last > i)
    return last - i;
  return k - i;
}

} // namespace megatron::tokenizer::detail

#endif // MEGATRON_LIB_TOKENIZER_UNICODE_H
