//===- WriteTestPlans.cpp - megatron-cuda-test-plans: the test models' plans as JSON files ---===//
//
// megatron-cuda-test-plans <directory> compiles every test model (TestPlans.h) and writes <directory>/<name>.json,
// so that the MLIR-free megatron-cuda-gpu-tests can check the same plans on a machine without the toolchain.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace megatron;

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: megatron-cuda-test-plans <directory>\n");
    return 2;
  }
  const std::filesystem::path directory = argv[1];
  std::error_code created;
  std::filesystem::create_directories(directory, created);
  if (created) {
    std::fprintf(stderr, "megatron-cuda-test-plans: cannot create %s: %s\n", directory.c_str(),
                 created.message().c_str());
    return 1;
  }
  for (const std::string &name : test::testPlanNames()) {
    std::string error;
    const plan::Plan *plan = test::testPlan(name, error);
    if (!plan) {
      std::fprintf(stderr, "megatron-cuda-test-plans: %s\n", error.c_str());
      return 1;
    }
    // Written beside and renamed, so that a reader never sees half a file.
    const std::filesystem::path path = directory / (name + ".json"), partial = directory / (name + ".json.tmp");
    {
      std::ofstream out(partial);
      out << plan::toJson(*plan);
      if (!out.flush()) {
        std::fprintf(stderr, "megatron-cuda-test-plans: cannot write %s\n", partial.c_str());
        return 1;
      }
    }
    std::filesystem::rename(partial, path, created);
    if (created) {
      std::fprintf(stderr, "megatron-cuda-test-plans: cannot write %s: %s\n", path.c_str(), created.message().c_str());
      return 1;
    }
  }
  std::printf("megatron-cuda-test-plans: %zu plans in %s\n", test::testPlanNames().size(), directory.c_str());
  return 0;
}
