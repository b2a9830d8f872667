//===- TestPlans.cpp - The names of the test models' plans ---===//

#include "TestPlans.h"

namespace megatron::test {

const std::vector<std::string> &testPlanNames() {
  static const std::vector<std::string> names = {"gpt",      "gpt-bf16", "llama",   "llama-bf16", "llama-f16",
                                                 "bert",     "t5",       "gpt-tp2", "llama-tp2",  "bert-tp2",
                                                 "t5-tp2",   "odd-gpt",  "odd-gpt-tp2"};
  return names;
}

} // namespace megatron::test
