//===- TestPlansTest.cpp - The test models' plans survive their JSON files ---===//
//
// megatron-cuda-gpu-tests checks the plans megatron-cuda-test-plans wrote as JSON, not the compiled ones that the
// simulator's tests check: the two must be the same plans. Each plan, written and read back, is written again
// identically (fingerprint included), and the names TestPlans.h lists are exactly those it can give.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include <gtest/gtest.h>

using namespace megatron;

namespace {

TEST(CudaTestPlans, EveryPlanSurvivesItsJsonFile) {
  for (const std::string &name : test::testPlanNames()) {
    std::string error;
    const plan::Plan *compiled = test::testPlan(name, error);
    ASSERT_NE(compiled, nullptr) << name << ": " << error;
    const std::string json = plan::toJson(*compiled);
    std::optional<plan::Plan> read = plan::parsePlan(json, name + ".json", error);
    ASSERT_TRUE(read.has_value()) << name << ": " << error;
    EXPECT_EQ(plan::toJson(*read), json) << name;
    EXPECT_EQ(plan::fingerprintOf(*read), plan::fingerprintOf(*compiled)) << name;
  }
  std::string error;
  EXPECT_EQ(test::testPlan("no-such-model", error), nullptr);
  EXPECT_NE(error.find("no test model is called 'no-such-model'"), std::string::npos) << error;
}

} // namespace
