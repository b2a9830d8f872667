//===- LoadedTestPlans.cpp - The test models' plans read from megatron-cuda-test-plans' files ---===//
//
// testPlan for the MLIR-free megatron-cuda-gpu-tests: <directory>/<name>.json, where the directory is
// $MEGATRON_TEST_PLANS (scripts/gpu-check.sh sets it to the bundle's plans) or else the build tree's, which the
// build fills by running megatron-cuda-test-plans (MEGATRON_TEST_PLANS_DIR).
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

namespace megatron::test {

namespace {

std::string plansDirectory() {
  const char *set = std::getenv("MEGATRON_TEST_PLANS");
  return set && *set ? set : MEGATRON_TEST_PLANS_DIR;
}

} // namespace

const plan::Plan *testPlan(const std::string &name, std::string &error) {
  const std::vector<std::string> &names = testPlanNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    error = "no test model is called '" + name + "'";
    return nullptr;
  }
  static std::mutex mutex; // the ranks of a sharded check may ask at once
  static std::map<std::string, std::unique_ptr<plan::Plan>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<plan::Plan> &slot = loaded[name];
  if (!slot) {
    const std::string path = plansDirectory() + "/" + name + ".json";
    std::optional<plan::Plan> plan = plan::readPlan(path, error);
    if (!plan) {
      error = "cannot read the test plan '" + name + "' (write the plans with megatron-cuda-test-plans <directory> "
              "and set MEGATRON_TEST_PLANS to it): " + error;
      return nullptr;
    }
    slot = std::make_unique<plan::Plan>(std::move(*plan));
  }
  return slot.get();
}

} // namespace megatron::test
