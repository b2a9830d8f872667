//===- TrainState.cpp - Parameters, optimizer state and their files --------===//

#include "TrainState.h"

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/cpu/Kernels.h"

#include <cmath>

namespace megatron::train {

void initializeParameters(runtime::Engine &engine, uint64_t seed) {
  const auto &params = engine.plan().params;
  for (size_t p = 0; p < params.size(); ++p) {
    const plan::Param &param = params[p];
    float *value = engine.as<float>(param.buffer);
    int64_t n = engine.buffer(param.buffer).numElements();
    if (param.init != plan::InitKind::Normal) {
      std::fill(value, value + n, param.init == plan::InitKind::Ones ? 1.0f : 0.0f);
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      // Box-Muller on two uniforms of this parameter's own stream; 1 − u keeps the logarithm finite.
      double u1 = 1.0 - cpu::randomUniform(seed, p, 2 * static_cast<uint64_t>(i));
      double u2 = cpu::randomUniform(seed, p, 2 * static_cast<uint64_t>(i) + 1);
      value[i] = static_cast<float>(param.initStd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
    }
  }
}

namespace {
/// The tensors of a training checkpoint and where they live in the engine.
struct NamedBuffer {
  std::string name;
  int buffer;
};

std::vector<NamedBuffer> checkpointTensors(const runtime::Engine &engine) {
  std::vector<NamedBuffer> tensors;
  for (const plan::Param &p : engine.plan().params) {
    tensors.push_back({"model." + p.name, p.buffer});
    tensors.push_back({"optimizer.exp_avg." + p.name, p.expAvg});
    tensors.push_back({"optimizer.exp_avg_sq." + p.name, p.expAvgSq});
  }
  return tensors;
}
} // namespace

std::string saveTrainingCheckpoint(runtime::Engine &engine, const std::string &saveDir, const ResumeState &state) {
  std::vector<ckpt::SaveTensor> tensors;
  for (const NamedBuffer &t : checkpointTensors(engine))
    tensors.push_back({t.name, ckpt::DType::F32, engine.buffer(t.buffer).shape, engine.data(t.buffer), {}});
  ckpt::CheckpointInfo info;
  info.iteration = state.iteration;
  info.modelFingerprint = engine.plan().model.fingerprint;
  info.planFingerprint = plan::fingerprintOf(engine.plan());
  info.runState = state.runState;
  info.runState["train_samples"] = state.trainSamples;
  return ckpt::saveCheckpoint(saveDir, info, tensors);
}

std::string loadTrainingCheckpoint(runtime::Engine &engine, const std::string &loadDir, ResumeState &state,
                                   bool &found) {
  found = ckpt::hasLatestCheckpoint(loadDir);
  if (!found)
    return {};
  ckpt::LoadRequest request;
  // The model must match; the plan may differ (another micro-batch size or thread count resumes the same run).
  request.modelFingerprint = engine.plan().model.fingerprint;
  for (const NamedBuffer &t : checkpointTensors(engine))
    request.tensors.push_back({t.name, ckpt::DType::F32, engine.buffer(t.buffer).shape, engine.data(t.buffer), {}});
  ckpt::CheckpointInfo info;
  if (std::string error = ckpt::loadLatestCheckpoint(loadDir, request, info); !error.empty())
    return error;
  state.iteration = info.iteration;
  state.runState = info.runState;
  state.trainSamples = info.runState.value("train_samples", uint64_t(0));
  return {};
}

} // namespace megatron::train
