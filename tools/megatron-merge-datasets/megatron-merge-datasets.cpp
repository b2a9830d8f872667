//===- megatron-merge-datasets.cpp - Megatron-LM's tools/merge_datasets.py in C++ -===//
//
//   megatron-merge-datasets --input DIR --output-prefix OUT
//   megatron-merge-datasets --input PREFIX [PREFIX ...] --output-prefix OUT
//
// Concatenates indexed datasets (.bin/.idx pairs) into one. With a directory, as merge_datasets.py: every
// .bin/.idx pair in it, in sorted order of their names; with prefixes, those datasets in the order given. The
// output takes the first dataset's dtype; all must share it. Every input is validated before anything is
// written, and the output appears only when complete. docs/datasets.md.
//
//===----------------------------------------------------------------------===//

#include "megatron/Support/ToolErrors.h"
#include "runtime/data/IndexedDataset.h"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace megatron::data;

using megatron::fail;

namespace {

const char *const kUsage =
    "usage: megatron-merge-datasets --input DIR --output-prefix PREFIX\n"
    "       megatron-merge-datasets --input PREFIX [PREFIX ...] --output-prefix PREFIX\n"
    "\n"
    "Merges the .bin/.idx datasets in DIR (sorted by name), or the ones named (in order), into PREFIX.bin/.idx,\n"
    "as Megatron-LM's tools/merge_datasets.py. See docs/datasets.md.\n";

bool isDirectory(const std::string &path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

} // namespace

int main(int argc, char **argv) {
  megatron::setToolName("megatron-merge-datasets");
  std::vector<std::string> inputs;
  std::string outputPrefix;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inlineValue;
    if (size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      inlineValue = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (flag == "--input") {
      if (inlineValue)
        inputs.push_back(*inlineValue);
      while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0)
        inputs.push_back(args[++i]);
      if (inputs.empty())
        fail("--input needs a directory or dataset prefixes");
    } else if (flag == "--output-prefix") {
      if (inlineValue)
        outputPrefix = *inlineValue;
      else if (i + 1 < args.size())
        outputPrefix = args[++i];
      if (outputPrefix.empty())
        fail("--output-prefix needs a value");
    } else if (flag == "--multimodal") {
      fail("--multimodal is not supported: multimodal indexed datasets (with sequence modes) are not read here");
    } else {
      fail("unknown argument '" + args[i] + "'\n" + kUsage);
    }
  }
  if (inputs.empty())
    fail("--input is required\n" + std::string(kUsage));
  if (outputPrefix.empty())
    fail("--output-prefix is required\n" + std::string(kUsage));

  // A directory stands for its datasets, in sorted order (merge_datasets.py); a prefix for itself.
  std::vector<std::string> prefixes;
  for (const std::string &input : inputs) {
    if (!isDirectory(input)) {
      prefixes.push_back(input);
      continue;
    }
    std::string error;
    std::vector<std::string> found = datasetPrefixesIn(input, error);
    if (!error.empty())
      fail(error);
    if (found.empty())
      fail("no .bin/.idx datasets in " + input);
    prefixes.insert(prefixes.end(), found.begin(), found.end());
  }

  if (std::string error = mergeIndexedDatasets(prefixes, outputPrefix); !error.empty())
    fail(error);

  std::string error;
  std::unique_ptr<IndexedDataset> merged = IndexedDataset::open(outputPrefix, error);
  if (!merged)
    fail("the merged dataset does not read back: " + error);
  std::printf("merged %zu datasets into %s: %llu documents, %llu sequences, %llu %s tokens\n", prefixes.size(),
              outputPrefix.c_str(), static_cast<unsigned long long>(merged->documentCount()),
              static_cast<unsigned long long>(merged->sequenceCount()),
              static_cast<unsigned long long>(merged->tokenCount()), dtypeName(merged->dtype()));
  return 0;
}
