//===- TrainState.cpp - Parameters, optimizer state and their files --------===//

#include "TrainState.h"

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/cpu/Kernels.h"

#include "Shards.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace megatron::train {

void initializeParameters(runtime::Engine &engine, uint64_t seed) {
  const auto &params = engine.plan().params;
  const int rank = engine.parallelRank().tpRank;
  for (size_t p = 0; p < params.size(); ++p) {
    const plan::Param &param = params[p];
    float *value = engine.as<float>(param.buffer);
    int64_t n = engine.buffer(param.buffer).numElements();
    if (param.init != plan::InitKind::Normal) {
      std::fill(value, value + n, param.init == plan::InitKind::Ones ? 1.0f : 0.0f);
      continue;
    }
    // Element i of the WHOLE tensor draws from (seed, p, i) whatever the layout, so a sharded run starts from
    // the unsharded run's weights: each rank draws exactly the elements of its shard.
    for (const ShardRun &run : shardRuns(param, rank, n))
      for (int64_t k = 0; k < run.length; ++k) {
        uint64_t i = static_cast<uint64_t>(run.whole + k);
        // Box-Muller on two uniforms of this parameter's own stream; 1 − u keeps the logarithm finite.
        double u1 = 1.0 - cpu::randomUniform(seed, static_cast<uint64_t>(param.index), 2 * i);
        double u2 = cpu::randomUniform(seed, static_cast<uint64_t>(param.index), 2 * i + 1);
        value[run.local + k] =
            static_cast<float>(param.initStd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
      }
  }
}

namespace {
/// The tensors of a training checkpoint and where they live in the engine.
struct NamedBuffer {
  std::string name;
  float *data;                      // this rank's local tensor
  int64_t local;                    // its elements
  const std::vector<int64_t> *shape; // its local shape
  const plan::Param *param;
};

std::vector<NamedBuffer> checkpointTensors(runtime::Engine &engine, const FlatMoments *moments) {
  std::vector<NamedBuffer> tensors;
  auto of = [&](const std::string &name, int buffer, const plan::Param &p) {
    return NamedBuffer{name, engine.as<float>(buffer), engine.buffer(buffer).numElements(),
                       &engine.buffer(buffer).shape, &p};
  };
  for (const plan::Param &p : engine.plan().params) {
    tensors.push_back(of("model." + p.name, p.buffer, p));
    if (!moments) {
      tensors.push_back(of("optimizer.exp_avg." + p.name, p.expAvg, p));
      tensors.push_back(of("optimizer.exp_avg_sq." + p.name, p.expAvgSq, p));
      continue;
    }
    // The flat moments, at the gradient's place in the flat gradients arena.
    NamedBuffer m = of("optimizer.exp_avg." + p.name, p.grad, p), v = m;
    int64_t at = engine.buffer(p.grad).offset / static_cast<int64_t>(sizeof(float));
    m.data = moments->expAvg + at;
    v.name = "optimizer.exp_avg_sq." + p.name;
    v.data = moments->expAvgSq + at;
    tensors.push_back(std::move(m));
    tensors.push_back(std::move(v));
  }
  return tensors;
}

/// Pipeline stages after the first send their whole tensors to the first stage, which writes the checkpoint: a
/// count, then per tensor its name (as i32 characters), shape and f32 data, on a tag no schedule uses.
constexpr int kCheckpointTag = comm::kMaxTag;
/// Tensor-parallel ranks send their shards to rank 0 of their group on this tag.
constexpr int kShardTag = 0;

std::string sendStageTensors(comm::Communicator &stages, const std::vector<ckpt::SaveTensor> &tensors) {
  auto send = [&](const void *data, int64_t count, plan::DType type) {
    return stages.send(data, count, type, 0, kCheckpointTag);
  };
  int64_t count = static_cast<int64_t>(tensors.size());
  if (std::string error = send(&count, 1, plan::DType::I64); !error.empty())
    return error;
  for (const ckpt::SaveTensor &t : tensors) {
    std::vector<int32_t> name(t.name.begin(), t.name.end());
    int64_t header[2] = {static_cast<int64_t>(name.size()), static_cast<int64_t>(t.shape.size())};
    int64_t elements = 1;
    for (int64_t d : t.shape)
      elements *= d;
    for (std::string error : {send(header, 2, plan::DType::I64), send(name.data(), header[0], plan::DType::I32),
                              send(t.shape.data(), header[1], plan::DType::I64),
                              send(t.data, elements, plan::DType::F32)})
      if (!error.empty())
        return error;
  }
  return {};
}

/// Receives stage `from`'s tensors, keeping those the checkpoint does not hold yet (a tied embedding's copy is
/// the same tensor).
std::string receiveStageTensors(comm::Communicator &stages, int from, std::vector<ckpt::SaveTensor> &tensors,
                                std::vector<std::vector<float>> &storage) {
  auto recv = [&](void *data, int64_t count, plan::DType type) {
    return stages.recv(data, count, type, from, kCheckpointTag);
  };
  int64_t count = 0;
  if (std::string error = recv(&count, 1, plan::DType::I64); !error.empty())
    return error;
  for (int64_t i = 0; i < count; ++i) {
    int64_t header[2] = {0, 0};
    if (std::string error = recv(header, 2, plan::DType::I64); !error.empty())
      return error;
    std::vector<int32_t> name(static_cast<size_t>(header[0]));
    std::vector<int64_t> shape(static_cast<size_t>(header[1]));
    if (std::string error = recv(name.data(), header[0], plan::DType::I32); !error.empty())
      return error;
    if (std::string error = recv(shape.data(), header[1], plan::DType::I64); !error.empty())
      return error;
    int64_t elements = 1;
    for (int64_t d : shape)
      elements *= d;
    std::vector<float> data(static_cast<size_t>(elements));
    if (std::string error = recv(data.data(), elements, plan::DType::F32); !error.empty())
      return error;
    std::string text(name.begin(), name.end());
    if (std::any_of(tensors.begin(), tensors.end(), [&](const ckpt::SaveTensor &t) { return t.name == text; }))
      continue;
    storage.push_back(std::move(data));
    tensors.push_back({text, ckpt::DType::F32, shape, storage.back().data(), {}});
  }
  return {};
}

/// The whole tensor's shape (the buffer's, for a parameter that is not sharded).
std::vector<int64_t> wholeShape(const NamedBuffer &t) {
  return t.param->shard.isSharded() ? t.param->shape : *t.shape;
}
} // namespace

std::string saveTrainingCheckpoint(runtime::Engine &engine, const std::string &saveDir, const ResumeState &state,
                                   const FlatMoments *moments) {
  // The data-parallel replicas hold the same tensors: the first replica's tensor-parallel group writes them.
  if (comm::Communicator *replicas = engine.dataGroup(); replicas && replicas->rank() > 0)
    return {};
  comm::Communicator *group = engine.tensorGroup();
  const int rank = group ? group->rank() : 0, size = group ? group->size() : 1;
  std::vector<NamedBuffer> named = checkpointTensors(engine, moments);
  // Sharded tensors are assembled whole on rank 0: every other rank sends its buffers (sends do not wait for the
  // receiver), rank 0 receives them in the same order and places each rank's spans.
  if (rank > 0) {
    for (const NamedBuffer &t : named)
      if (t.param->shard.isSharded())
        if (std::string error = group->send(t.data, t.local, plan::DType::F32, 0, kShardTag);
            !error.empty())
          return "saving the checkpoint: sending the shards of '" + t.name + "' to rank 0: " + error;
    return {};
  }
  std::vector<std::vector<float>> whole(named.size());
  std::vector<float> received;
  std::vector<ckpt::SaveTensor> tensors;
  for (size_t i = 0; i < named.size(); ++i) {
    const NamedBuffer &t = named[i];
    std::vector<int64_t> shape = wholeShape(t);
    if (!t.param->shard.isSharded()) {
      tensors.push_back({t.name, ckpt::DType::F32, shape, t.data, {}});
      continue;
    }
    int64_t local = t.local;
    whole[i].resize(static_cast<size_t>(wholeElements(*t.param, local)));
    received.resize(static_cast<size_t>(local));
    for (int r = 0; r < size; ++r) {
      const float *shard = t.data;
      if (r > 0) {
        if (std::string error = group->recv(received.data(), local, plan::DType::F32, r, kShardTag); !error.empty())
          return "saving the checkpoint: receiving the shards of '" + t.name + "' from rank " + std::to_string(r) +
                 ": " + error;
        shard = received.data();
      }
      for (const ShardRun &run : shardRuns(*t.param, r, local))
        std::copy_n(shard + run.local, run.length, whole[i].begin() + run.whole);
    }
    tensors.push_back({t.name, ckpt::DType::F32, shape, whole[i].data(), {}});
  }
  // Pipeline stages: the first stage's writer collects the others' tensors and writes one checkpoint.
  std::vector<std::vector<float>> stageStorage; // the other stages' tensors
  if (comm::Communicator *stages = engine.pipelineGroup(); stages && stages->size() > 1) {
    if (stages->rank() > 0) {
      if (std::string error = sendStageTensors(*stages, tensors); !error.empty())
        return "saving the checkpoint: sending pipeline stage " + std::to_string(stages->rank()) +
               "'s tensors to the first stage: " + error;
      return {};
    }
    for (int from = 1; from < stages->size(); ++from)
      if (std::string error = receiveStageTensors(*stages, from, tensors, stageStorage); !error.empty())
        return "saving the checkpoint: receiving pipeline stage " + std::to_string(from) + "'s tensors: " + error;
  }
  ckpt::CheckpointInfo info;
  info.iteration = state.iteration;
  info.modelFingerprint = engine.plan().model.fingerprint;
  info.planFingerprint = plan::fingerprintOf(engine.plan());
  info.runState = state.runState;
  info.runState["train_samples"] = state.trainSamples;
  return ckpt::saveCheckpoint(saveDir, info, tensors);
}

std::string loadTrainingCheckpoint(runtime::Engine &engine, const std::string &loadDir, ResumeState &state,
                                   bool &found, const FlatMoments *moments) {
  found = ckpt::hasLatestCheckpoint(loadDir);
  if (!found)
    return {};
  const int rank = engine.parallelRank().tpRank;
  ckpt::LoadRequest request;
  // The model must match; the plan may differ (another micro-batch size, thread count or parallel layout resumes
  // the same run: the checkpoint holds whole tensors, and each rank keeps its spans of them).
  request.modelFingerprint = engine.plan().model.fingerprint;
  for (const NamedBuffer &t : checkpointTensors(engine, moments)) {
    ckpt::LoadTensor tensor{t.name, ckpt::DType::F32, wholeShape(t), nullptr, {}};
    if (!t.param->shard.isSharded()) {
      tensor.data = t.data;
    } else {
      // The whole tensor arrives in pieces; copy the bytes that fall in this rank's runs.
      std::vector<ShardRun> runs = shardRuns(*t.param, rank, t.local);
      std::sort(runs.begin(), runs.end(), [](const ShardRun &a, const ShardRun &b) { return a.whole < b.whole; });
      auto *local = reinterpret_cast<std::byte *>(t.data);
      tensor.write = [runs, local](uint64_t offset, const void *bytes, size_t size) {
        const uint64_t element = sizeof(float), end = offset + size;
        // The first run that ends after the piece starts.
        auto it = std::upper_bound(runs.begin(), runs.end(), offset, [&](uint64_t at, const ShardRun &run) {
          return at < static_cast<uint64_t>(run.whole + run.length) * element;
        });
        for (; it != runs.end() && static_cast<uint64_t>(it->whole) * element < end; ++it) {
          uint64_t from = std::max<uint64_t>(offset, static_cast<uint64_t>(it->whole) * element);
          uint64_t to = std::min<uint64_t>(end, static_cast<uint64_t>(it->whole + it->length) * element);
          std::memcpy(local + static_cast<uint64_t>(it->local) * element + (from - it->whole * element),
                      static_cast<const std::byte *>(bytes) + (from - offset), to - from);
        }
        return std::string();
      };
    }
    request.tensors.push_back(std::move(tensor));
  }
  ckpt::CheckpointInfo info;
  if (std::string error = ckpt::loadLatestCheckpoint(loadDir, request, info); !error.empty())
    return error;
  state.iteration = info.iteration;
  state.runState = info.runState;
  state.trainSamples = info.runState.value("train_samples", uint64_t(0));
  return {};
}

} // namespace megatron::train
