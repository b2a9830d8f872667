//===- IdxReaderFuzzer.cpp - libFuzzer target: validate Megatron .idx files ---===//
//
// Feeds arbitrary bytes to IndexedDataset::validateIndex, the check that IndexedDataset::open runs on a
// memory-mapped .idx before anything reads it (runtime/data/IndexedDataset.h). The first input byte chooses the
// size of the .bin it is validated against: 0 gives the size the index's own lengths imply (when the header
// parses), so that valid indices are reached and the document checks are exercised; any other value b gives that
// size plus b - 128 bytes. The rest of the input is the .idx.
//
// What counts as a bug: a crash, a sanitizer report (a read outside the input), a hang; and an index the
// validator accepts although some sequence or document index falls outside the files, which the harness checks
// again independently and reports with abort().
//
// Built two ways (test/fuzz/CMakeLists.txt): as the libFuzzer binary idx-reader-fuzzer (clang,
// -DMEGATRON_BUILD_FUZZERS=ON) and, with any compiler, as idx-fuzz-replay, which runs saved inputs through the
// same function (ctest idx-fuzz-corpus-replay).
//
//===----------------------------------------------------------------------===//

#include "runtime/data/IndexedDataset.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace megatron::data;

unsigned long long idxFuzzAcceptedInputs = 0;

namespace {
template <typename T> T load(const uint8_t *p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

[[noreturn]] void invariant(const char *what) {
  std::fprintf(stderr, "idx fuzzer: the validator accepted an index that %s\n", what);
  std::abort();
}

/// The .bin size the lengths imply, or 0 when the header does not parse far enough.
uint64_t impliedBinSize(const uint8_t *idx, size_t size) {
  if (size < kIndexHeaderSize || std::memcmp(idx, kIndexMagic, sizeof(kIndexMagic)) != 0 || !isDTypeCode(idx[17]))
    return 0;
  uint64_t sequences = load<uint64_t>(idx + 18);
  if (sequences > (size - kIndexHeaderSize) / 4)
    return 0;
  uint64_t total = 0, itemSize = dtypeSize(static_cast<DType>(idx[17]));
  for (uint64_t i = 0; i < sequences; ++i) {
    int32_t length = load<int32_t>(idx + kIndexHeaderSize + 4 * i);
    if (length > 0)
      total += static_cast<uint64_t>(length) * itemSize;
  }
  return total;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  uint8_t selector = data[0];
  // A copy of exactly the index bytes, so that ASan sees any read past them.
  size_t idxSize = size - 1;
  uint8_t *idx = static_cast<uint8_t *>(std::malloc(idxSize ? idxSize : 1));
  std::memcpy(idx, data + 1, idxSize);
  uint64_t binSize = impliedBinSize(idx, idxSize);
  if (selector != 0)
    binSize = static_cast<uint64_t>(std::max<int64_t>(0, static_cast<int64_t>(binSize) + selector - 128));

  std::string error = IndexedDataset::validateIndex(idx, idxSize, binSize, "fuzz.idx");
  if (error.empty()) {
    ++idxFuzzAcceptedInputs;
    // Check what acceptance promises, independently of the validator.
    uint64_t sequences = load<uint64_t>(idx + 18), documents = load<uint64_t>(idx + 26);
    uint64_t itemSize = dtypeSize(static_cast<DType>(idx[17]));
    if (kIndexHeaderSize + 12 * sequences + 8 * documents != idxSize)
      invariant("does not have the size its counts imply");
    for (uint64_t i = 0; i < sequences; ++i) {
      int32_t length = load<int32_t>(idx + kIndexHeaderSize + 4 * i);
      int64_t pointer = load<int64_t>(idx + kIndexHeaderSize + 4 * sequences + 8 * i);
      if (length < 0 || pointer < 0 || static_cast<uint64_t>(pointer) % itemSize != 0 ||
          static_cast<uint64_t>(pointer) + static_cast<uint64_t>(length) * itemSize > binSize)
        invariant("has a sequence outside the .bin");
    }
    int64_t previous = 0;
    for (uint64_t d = 0; d < documents; ++d) {
      int64_t index = load<int64_t>(idx + kIndexHeaderSize + 12 * sequences + 8 * d);
      if (index < previous || static_cast<uint64_t>(index) > sequences || (d == 0 && index != 0))
        invariant("has a document index out of order or range");
      previous = index;
    }
  } else if (error.rfind("fuzz.idx: ", 0) != 0) {
    invariant("was rejected with a message that does not name the file");
  }
  std::free(idx);
  return 0;
}
