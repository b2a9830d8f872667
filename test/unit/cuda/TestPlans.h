//===- TestPlans.h - The test models' plans by name, compiled or read from files ---*- C++ -*-===//
//
// The backend-generic checks name the test models' plans ("gpt", "llama-bf16", "bert-tp2", ...) and get them
// here, so that they need no MLIR: the host simulator's tests and the megatron-cuda-test-plans tool link
// CompiledTestPlans.cpp, which compiles them through the real pipeline (TestModels.h); the MLIR-free
// megatron-cuda-gpu-tests links LoadedTestPlans.cpp, which reads the JSON files that tool wrote (the lent GPU
// machines carry binaries without MLIR or LLVM: scripts/gpu-check.sh). Each executable links exactly one of the
// two definitions of testPlan.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_TEST_UNIT_CUDA_TESTPLANS_H
#define MEGATRON_TEST_UNIT_CUDA_TESTPLANS_H

#include "megatron/Plan/Plan.h"

#include <string>
#include <vector>

namespace megatron::test {

/// Every name testPlan knows: gpt, gpt-bf16 (with dropout, fused by --mt-fuse-elementwise), llama, llama-bf16,
/// llama-f16, bert, t5 (one rank); gpt-tp2 (with sequence parallelism), llama-tp2, bert-tp2 (with sequence
/// parallelism), t5-tp2 (one rank's plan of two); odd-gpt and odd-gpt-tp2 (TestModels.h's GPT of awkward shapes,
/// the latter with sequence parallelism).
const std::vector<std::string> &testPlanNames();

/// The plan called `name`, made once per process; null and `error` when it cannot be had (an unknown name, a
/// missing or unreadable file).
const plan::Plan *testPlan(const std::string &name, std::string &error);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_TESTPLANS_H
