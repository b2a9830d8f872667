//===- CompiledTestPlans.cpp - The test models' plans compiled through the pipeline ---===//
//
// testPlan for the executables that link MLIR: each name is one of TestModels.h's plans.
//
//===----------------------------------------------------------------------===//

#include "TestModels.h"
#include "TestPlans.h"

#include <map>

namespace megatron::test {

const plan::Plan *testPlan(const std::string &name, std::string &error) {
  static const std::map<std::string, const plan::Plan &(*)()> compilers = {
      {"gpt", []() -> const plan::Plan & { return gptPlan(); }},
      {"gpt-bf16", []() -> const plan::Plan & { return gptPlan(plan::DType::BF16); }},
      {"llama", []() -> const plan::Plan & { return llamaPlan(); }},
      {"llama-bf16", []() -> const plan::Plan & { return llamaPlan(plan::DType::BF16); }},
      {"llama-f16", []() -> const plan::Plan & { return llamaPlan(plan::DType::F16); }},
      {"bert", []() -> const plan::Plan & { return bertPlan(); }},
      {"t5", []() -> const plan::Plan & { return t5Plan(); }},
      {"gpt-tp2", []() -> const plan::Plan & { return shardedGptPlan(); }},
      {"llama-tp2", []() -> const plan::Plan & { return shardedLlamaPlan(); }},
      {"bert-tp2", []() -> const plan::Plan & { return bertPlan(2); }},
      {"t5-tp2", []() -> const plan::Plan & { return t5Plan(2); }},
      {"odd-gpt", []() -> const plan::Plan & { return oddGptPlan(1); }},
      {"odd-gpt-tp2", []() -> const plan::Plan & { return oddGptPlan(2); }},
  };
  auto found = compilers.find(name);
  if (found == compilers.end()) {
    error = "no test model is called '" + name + "'";
    return nullptr;
  }
  return &found->second();
}

} // namespace megatron::test
