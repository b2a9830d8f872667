//===- IdxReplayMain.cpp - Runs saved inputs through the .idx fuzz target -----===//
//
// idx-fuzz-replay [--require-accepted] PATH...
//
// Feeds each file named, and every regular file under each directory named (sorted), to the .idx fuzz target's
// LLVMFuzzerTestOneInput (IdxReaderFuzzer.cpp), as the libFuzzer binary would. With --require-accepted, the
// files that follow must be accepted by the validator (the valid seeds: they keep the corpus from going stale).
// Needs no clang and no libFuzzer: ctest idx-fuzz-corpus-replay runs the seed corpus in every build.
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern unsigned long long idxFuzzAcceptedInputs; // IdxReaderFuzzer.cpp

namespace {
bool isDirectory(const std::string &path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool replayFile(const std::string &path, bool requireAccepted, unsigned &count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "idx-fuzz-replay: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay: %s\n", path.c_str());
  std::fflush(stderr);
  unsigned long long before = idxFuzzAcceptedInputs;
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  ++count;
  if (requireAccepted && idxFuzzAcceptedInputs == before) {
    std::fprintf(stderr, "idx-fuzz-replay: %s is a seed that must be a valid index, but it is rejected\n",
                 path.c_str());
    return false;
  }
  return true;
}
} // namespace

int main(int argc, char **argv) {
  bool requireAccepted = false, ok = true;
  unsigned count = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--require-accepted" || arg == "--allow-rejected") {
      requireAccepted = arg == "--require-accepted";
      continue;
    }
    if (!isDirectory(arg)) {
      ok &= replayFile(arg, requireAccepted, count);
      continue;
    }
    std::vector<std::string> files;
    if (DIR *dir = ::opendir(arg.c_str())) {
      while (struct dirent *entry = ::readdir(dir))
        if (entry->d_name[0] != '.' && !isDirectory(arg + "/" + entry->d_name))
          files.push_back(arg + "/" + entry->d_name);
      ::closedir(dir);
    } else {
      std::fprintf(stderr, "idx-fuzz-replay: cannot list %s\n", arg.c_str());
      ok = false;
    }
    std::sort(files.begin(), files.end());
    for (const std::string &file : files)
      ok &= replayFile(file, requireAccepted, count);
  }
  std::fprintf(stderr, "idx-fuzz-replay: %u inputs replayed (%llu accepted), no crash%s\n", count,
               idxFuzzAcceptedInputs, ok ? "" : ", but see the errors above");
  return ok ? 0 : 1;
}
