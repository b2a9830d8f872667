//===- ReplayMain.cpp - Runs saved inputs through the fuzz target ----------===//
//
// mt-fuzz-replay [--suffix=EXT] [--require-valid] PATH...
//
// Feeds each file named on the command line, and every regular file under each directory named (recursively,
// in sorted order), to LLVMFuzzerTestOneInput, the same function the libFuzzer binary calls. `--suffix=.mlir`
// makes the directories that follow it contribute only files with that suffix (`--suffix=` lifts the filter).
// A file containing `// -----` separator lines (the lit tests' -split-input-file) is fed whole and then chunk by
// chunk, so every case of a verifier test reaches its verifier. `--require-valid` makes the paths that follow it
// seeds that must verify (and round trip): the replay fails, naming the file, when one does not, so that the seed
// corpus cannot go stale when the dialect changes (`--allow-invalid` ends that).
//
// It needs no clang and no libFuzzer: ctest fuzz-corpus-replay runs the seed corpus and the lit inputs through
// it in every build. Exit status 0 when every input was handled (accepted or rejected); a crash or a failed
// round trip aborts, after the name of the input has been printed.
//
//===----------------------------------------------------------------------===//

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern unsigned long long mtFuzzVerifiedInputs; // MtParseVerifyFuzzer.cpp

namespace {
/// Runs one input; returns whether it verified.
bool feed(llvm::StringRef what, llvm::StringRef bytes) {
  llvm::errs() << "replay: " << what << "\n";
  llvm::errs().flush(); // so that the name is out before a crash
  unsigned long long verifiedBefore = mtFuzzVerifiedInputs;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
  return mtFuzzVerifiedInputs != verifiedBefore;
}

/// Splits at lines that consist of `// -----` (as mlir-opt's -split-input-file does).
std::vector<llvm::StringRef> splitChunks(llvm::StringRef text) {
  std::vector<llvm::StringRef> chunks;
  size_t start = 0, lineStart = 0;
  while (lineStart < text.size()) {
    size_t lineEnd = text.find('\n', lineStart);
    if (lineEnd == llvm::StringRef::npos)
      lineEnd = text.size();
    if (text.slice(lineStart, lineEnd).trim() == "// -----") {
      chunks.push_back(text.slice(start, lineStart));
      start = std::min(lineEnd + 1, text.size());
    }
    lineStart = lineEnd + 1;
  }
  if (!chunks.empty())
    chunks.push_back(text.substr(start));
  return chunks;
}

bool replayFile(const std::string &path, bool requireValid, unsigned &count) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    llvm::errs() << "mt-fuzz-replay: cannot read " << path << ": " << buffer.getError().message() << "\n";
    return false;
  }
  llvm::StringRef text = (*buffer)->getBuffer();
  bool verified = feed(path, text);
  ++count;
  if (requireValid && !verified) {
    llvm::errs() << "mt-fuzz-replay: " << path
                 << " is a seed that must verify, but it does not (run megatron-opt on it for the error)\n";
    return false;
  }
  std::vector<llvm::StringRef> chunks = splitChunks(text);
  for (size_t i = 0; i < chunks.size(); ++i, ++count)
    feed(path + " (chunk " + std::to_string(i + 1) + " of " + std::to_string(chunks.size()) + ")", chunks[i]);
  return true;
}

bool replayPath(const std::string &path, llvm::StringRef suffix, bool requireValid, unsigned &count) {
  if (!llvm::sys::fs::is_directory(path))
    return replayFile(path, requireValid, count);
  std::vector<std::string> files;
  std::error_code ec;
  for (llvm::sys::fs::recursive_directory_iterator it(path, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.starts_with(".") || !llvm::sys::fs::is_regular_file(it->path()))
      continue;
    if (!suffix.empty() && !name.ends_with(suffix))
      continue;
    files.push_back(it->path());
  }
  if (ec) {
    llvm::errs() << "mt-fuzz-replay: cannot list " << path << ": " << ec.message() << "\n";
    return false;
  }
  std::sort(files.begin(), files.end());
  bool ok = true;
  for (const std::string &file : files)
    ok &= replayFile(file, requireValid, count);
  return ok;
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    llvm::errs() << "usage: mt-fuzz-replay [--suffix=EXT] [--require-valid|--allow-invalid] FILE-OR-DIRECTORY...\n";
    return 2;
  }
  std::string suffix;
  bool requireValid = false;
  unsigned count = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg = argv[i];
    if (arg.consume_front("--suffix=")) {
      suffix = arg.str();
      continue;
    }
    if (arg == "--require-valid" || arg == "--allow-invalid") {
      requireValid = arg == "--require-valid";
      continue;
    }
    ok &= replayPath(arg.str(), suffix, requireValid, count);
  }
  llvm::errs() << "mt-fuzz-replay: " << count << " inputs replayed (" << mtFuzzVerifiedInputs
               << " verified and round-tripped), no crash" << (ok ? "" : ", but see the errors above") << "\n";
  return ok ? 0 : 1;
}
