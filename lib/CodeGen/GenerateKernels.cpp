//===- GenerateKernels.cpp - Every step of a plan to CUDA kernels ---------------===//
//
// Walks the plan's programs in order and asks the emitter of each step's op for its kernels. Kernels are
// identified by name, which hashes their source: steps with the same op, shapes, types and constant attributes
// (every residual add of a model, its dropouts of one shape and rate) share one kernel.
//
//===----------------------------------------------------------------------===//

#include "megatron/CodeGen/CudaKernels.h"

#include "StepEmitters.h"

#include <map>

namespace megatron::codegen {

using namespace detail;

const char *toString(StepBackend backend) {
  switch (backend) {
  case StepBackend::Generated:
    return "generated";
  case StepBackend::CublasLt:
    return "cublaslt";
  case StepBackend::Nccl:
    return "nccl";
  case StepBackend::Missing:
    return "missing";
  }
  return "?";
}

namespace {

struct OpRoute {
  const char *op;
  StepBackend backend;
  StepEmitter emit;     // Generated
  const char *reason;   // Missing
};

// Every op the CPU backend binds (runtime/engine/StepBinder.cpp), and where it goes on a GPU.
const OpRoute kRoutes[] = {
    {"fill", StepBackend::Generated, emitElementwise, nullptr},
    {"zero", StepBackend::Generated, emitElementwise, nullptr},
    {"accumulate", StepBackend::Generated, emitElementwise, nullptr},
    {"cast", StepBackend::Generated, emitElementwise, nullptr},
    {"add", StepBackend::Generated, emitElementwise, nullptr},
    {"add_bias", StepBackend::Generated, emitElementwise, nullptr},
    {"sum_rows", StepBackend::Generated, emitElementwise, nullptr},
    {"gelu", StepBackend::Generated, emitActivation, nullptr},
    {"gelu_grad", StepBackend::Generated, emitActivation, nullptr},
    {"swiglu", StepBackend::Generated, emitActivation, nullptr},
    {"swiglu_grad", StepBackend::Generated, emitActivation, nullptr},
    {"dropout", StepBackend::Generated, emitActivation, nullptr},
    {"dropout_add", StepBackend::Generated, emitActivation, nullptr},
    {"rope", StepBackend::Generated, emitHeads, nullptr},
    {"rope_grad", StepBackend::Generated, emitHeads, nullptr},
    {"split_qkv", StepBackend::Generated, emitHeads, nullptr},
    {"merge_qkv", StepBackend::Generated, emitHeads, nullptr},
    {"split_kv", StepBackend::Generated, emitHeads, nullptr},
    {"merge_kv", StepBackend::Generated, emitHeads, nullptr},
    {"layer_norm", StepBackend::Generated, emitNorm, nullptr},
    {"layer_norm_grad", StepBackend::Generated, emitNorm, nullptr},
    {"rms_norm", StepBackend::Generated, emitNorm, nullptr},
    {"rms_norm_grad", StepBackend::Generated, emitNorm, nullptr},
    {"cross_entropy", StepBackend::Generated, emitLoss, nullptr},
    {"cross_entropy_grad", StepBackend::Generated, emitLoss, nullptr},
    {"embedding", StepBackend::Generated, emitEmbedding, nullptr},
    {"embedding_grad", StepBackend::Generated, emitEmbedding, nullptr},
    {"add_position_embedding", StepBackend::Generated, emitEmbedding, nullptr},
    {"position_embedding_grad", StepBackend::Generated, emitEmbedding, nullptr},
    {"linear", StepBackend::CublasLt, nullptr, nullptr},
    {"linear_grad_input", StepBackend::CublasLt, nullptr, nullptr},
    {"linear_grad_weight", StepBackend::CublasLt, nullptr, nullptr},
    {"linear_gelu", StepBackend::CublasLt, nullptr, nullptr},            // the GELU_AUX(_BIAS) epilogue
    {"linear_grad_input_gelu", StepBackend::CublasLt, nullptr, nullptr}, // the DGELU epilogue
    {"pooler", StepBackend::Generated, emitPooler, nullptr},
    {"pooler_grad", StepBackend::Generated, emitPooler, nullptr},
    {"all_reduce", StepBackend::Nccl, nullptr, nullptr},
    {"all_gather", StepBackend::Nccl, nullptr, nullptr},
    {"reduce_scatter", StepBackend::Nccl, nullptr, nullptr},
    {"all_reduce_grads", StepBackend::Nccl, nullptr, nullptr},
    {"send", StepBackend::Nccl, nullptr, nullptr},
    {"recv", StepBackend::Nccl, nullptr, nullptr},
    {"attention", StepBackend::Generated, emitAttention, nullptr},
    {"attention_grad", StepBackend::Generated, emitAttention, nullptr},
    {"relative_position_bias", StepBackend::Generated, emitPositionBias, nullptr},
    {"relative_position_bias_grad", StepBackend::Generated, emitPositionBias, nullptr},
    {"shard_slice", StepBackend::Generated, emitElementwise, nullptr},
};

const OpRoute *routeOf(const std::string &op) {
  for (const OpRoute &route : kRoutes)
    if (op == route.op)
      return &route;
  return nullptr;
}

} // namespace

KernelSet generateKernels(const plan::Plan &plan) {
  KernelSet set;
  std::map<std::string, int> byName;
  for (const plan::Program &program : plan.programs) {
    for (size_t j = 0; j < program.steps.size(); ++j) {
      const plan::Step &step = program.steps[j];
      StepPlan entry;
      entry.ref = StepRef{program.name, int(j)};
      entry.op = step.op;
      const OpRoute *route = routeOf(step.op);
      if (!route) {
        entry.reason = "no CUDA kernel for the op '" + step.op + "'";
      } else if (route->backend != StepBackend::Generated) {
        entry.backend = route->backend;
        entry.reason = route->reason ? route->reason : "";
      } else {
        std::string error;
        std::vector<CudaKernel> kernels = route->emit(plan, step, error);
        if (!error.empty()) {
          entry.reason = error;
        } else {
          entry.backend = joinedByCollectives(step) ? StepBackend::Nccl : StepBackend::Generated;
          for (CudaKernel &kernel : kernels) {
            auto [it, inserted] = byName.try_emplace(kernel.name, int(set.kernels.size()));
            if (inserted)
              set.kernels.push_back(std::move(kernel));
            set.kernels[it->second].steps.push_back(entry.ref);
            entry.kernels.push_back(it->second);
          }
        }
      }
      set.steps.push_back(std::move(entry));
    }
  }
  return set;
}

} // namespace megatron::codegen
