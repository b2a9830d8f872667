//===- TrainState.h - Parameters, optimizer state and their files -*- C++ -*-===//
//
// What a run owns besides the plan's programs: parameter initialisation, and checkpoints of the parameters, AdamW's
// moments and the run state that makes a resume exact. Private to runtime/train.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_TRAINSTATE_H
#define MEGATRON_RUNTIME_TRAIN_TRAINSTATE_H

#include "runtime/engine/Engine.h"

#include <nlohmann/json.hpp>

#include <string>

namespace megatron::train {

/// Initialises every parameter as its plan entry says (normal with its effective std, zeros, ones). The values are
/// a pure function of (seed, parameter index, element index in the WHOLE tensor): Philox normals via Box-Muller.
/// A tensor-parallel rank draws the elements of its shard, so every layout starts from the same weights.
void initializeParameters(runtime::Engine &engine, uint64_t seed);

/// What a checkpoint restores besides tensors.
struct ResumeState {
  int64_t iteration = 0;
  uint64_t trainSamples = 0; // the train loader's state
  nlohmann::json runState;
};

/// AdamW's moments kept outside the engine's buffers: under the distributed optimizer (plan.optimizer_shard) the
/// engine holds only a replica's chunk, and a checkpoint needs them whole. Each array is indexed like the flat
/// gradients arena (this tensor-parallel rank's): a parameter's moments start at its gradient's offset / 4.
struct FlatMoments {
  float *expAvg = nullptr;
  float *expAvgSq = nullptr;
};

/// Saves parameters ("model.<name>"), AdamW moments ("optimizer.exp_avg.<name>", "optimizer.exp_avg_sq.<name>")
/// and the run state as <saveDir>/iter_<iteration>. The tensors are whole whatever the layout: with a
/// tensor-parallel group (engine.tensorGroup()) this is collective, every rank sends its shards to rank 0, which
/// assembles and writes them (the other ranks return once their shards are sent). Data-parallel replicas
/// (engine.dataGroup()) hold the same tensors: only the first replica's ranks take part, the others return at once.
/// The moments come from `moments` when given (else from the parameters' exp_avg buffers). Returns "" or the error.
std::string saveTrainingCheckpoint(runtime::Engine &engine, const std::string &saveDir, const ResumeState &state,
                                   const FlatMoments *moments = nullptr);

/// Loads the latest checkpoint of `loadDir` into the engine, checking that it belongs to the same model. Returns ""
/// or the error; `found` is false (and nothing loaded) when the directory has no checkpoint yet, as Megatron.
/// The checkpoint's tensors are whole: each tensor-parallel rank reads them and keeps its spans, so a checkpoint
/// loads into any layout of the same model. Not collective (every rank reads the files itself).
/// The moments go to `moments` when given (else to the parameters' exp_avg buffers).
std::string loadTrainingCheckpoint(runtime::Engine &engine, const std::string &loadDir, ResumeState &state,
                                   bool &found, const FlatMoments *moments = nullptr);

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_TRAINSTATE_H
