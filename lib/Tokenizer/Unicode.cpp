//===- Unicode.cpp - GPT-2's character classes from ICU -------------------===//

#include "Unicode.h"

#include <unicode/uchar.h>

#include <memory>

namespace megatron::tokenizer::detail {

static CharClass classFromIcu(char32_t c) {
  UChar32 u = static_cast<UChar32>(c);
  if (u_isUWhiteSpace(u))
    return kSpace;
  uint32_t mask = U_GET_GC_MASK(u);
  if (mask & U_GC_L_MASK)
    return kLetter;
  if (mask & U_GC_N_MASK)
    return kNumber;
  return kOther;
}

CharClass classOfCodePoint(char32_t c) {
  if (c < 0x10000)
    return CharClass(bmpClassTable()[c]);
  return classFromIcu(c);
}

const uint8_t *bmpClassTable() {
  static const std::unique_ptr<uint8_t[]> table = [] {
    auto t = std::make_unique<uint8_t[]>(0x10000);
    for (char32_t c = 0; c < 0x10000; ++c)
      t[c] = classFromIcu(c);
    return t;
  }();
  return table.get();
}

} // namespace megatron::tokenizer::detail
