//===- RunOptimizer.cpp - The optimizer step of an iteration -------------===//
//
// Megatron's step after the micro-batches: unscaling (fp16), the global gradient norm over the ranks, skipping
// on an overflow, clipping and AdamW: on the CPU, as the distributed optimizer (ZeRO-1), or on the device (Run.h).
//
//===----------------------------------------------------------------------===//

#include "Run.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace megatron::train {

/// The iteration's optimizer step after its micro-batches: on the device, or unscale, norm, skip or clip and
/// AdamW on the CPU (or the distributed optimizer's step).
std::string Run::optimizerStep(int64_t iteration, double &gradNorm) {
  if (device)
    return deviceOptimizerStep(iteration, gradNorm);

  if (scaler) // the gradients of the scaled loss, back to the loss's scale
    cpu::scaleTensors<float>(static_cast<int>(grads.size()), grads.data(), sizes.data(),
                             static_cast<float>(1.0 / scaler->scale()));
  if (distributed)
    return distributedOptimizerStep(iteration, gradNorm);
  // Clipping by the global norm, as Megatron: scale by clip / (norm + 1e-6) when that is below 1.
  if (std::string error = gradientNorm(gradNorm); !error.empty())
    return "iteration " + std::to_string(iteration) + ": " + error;
  if (skipOverflow(gradNorm))
    return {};
  if (opts.clipGrad > 0) {
    double coefficient = opts.clipGrad / (gradNorm + 1e-6);
    if (coefficient < 1.0)
      cpu::scaleTensors<float>(static_cast<int>(grads.size()), grads.data(), sizes.data(),
                               static_cast<float>(coefficient));
  }
  cpu::AdamWConfig adam{lrAt(iteration), opts.adamBeta1, opts.adamBeta2, opts.adamEps, opts.weightDecay,
                        iteration - skippedIterations};
  for (const plan::Param &p : engine->plan().params)
    cpu::adamwStep<float>(engine->buffer(p.buffer).numElements(), adam, p.weightDecay, engine->as<float>(p.buffer),
                          engine->as<float>(p.grad), engine->as<float>(p.expAvg), engine->as<float>(p.expAvgSq));
  return {};
}

bool Run::skipOverflow(double &gradNorm) {
  if (!scaler)
    return false;
  const bool overflow = !std::isfinite(gradNorm);
  scaler->update(overflow);
  if (overflow) { // no update; the next iteration tries a smaller scale
    ++skippedIterations;
    ++intervalSkipped;
    gradNorm = std::numeric_limits<double>::quiet_NaN();
  }
  return overflow;
}

std::string Run::gradientNorm(double &norm) {
  // Each element of the whole model once: every rank of the first replica sums the squares of the elements it
  // owns (in double; the other replicas hold the same summed gradients and count nothing), and the groups add the
  // ranks' sums in rank order, so every rank clips with the same bits.
  double sum = 0;
  if (dpRank == 0)
    for (size_t i = 0; i < ownedGrads.size(); ++i)
      sum += cpu::sumOfSquares<float>(ownedSizes[i], ownedGrads[i]);
  if (group)
    if (std::string error = group->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "the gradient norm: " + error;
  if (replicas && dpSize > 1)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return "the gradient norm: " + error;
  if (std::string error = shareOverStages(sum); !error.empty())
    return "the gradient norm: " + error;
  norm = std::sqrt(sum);
  return {};
}

std::string Run::setUpDistributedOptimizer(const std::vector<device::Runs> &counted) {
  // The replica's chunk from the plan, as the device optimizer works it out (runtime/device/ReplicaChunk.h): the
  // arenas' layout checked, the parameters' pieces in the chunk and the flat runs of it this rank counts.
  std::string error;
  std::optional<device::ReplicaChunk> mine = device::replicaChunk(engine->plan(), dpRank, dpSize, &counted, error);
  if (!mine)
    return error;
  distributed = true;
  chunk = mine->chunk;
  lo = mine->lo;
  hi = mine->hi;
  flatGrads = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Grads));
  flatParams = reinterpret_cast<float *>(engine->arenaData(plan::Arena::Params));
  shardExpAvg = engine->as<float>(engine->plan().optimizerShard->expAvg);
  shardExpAvgSq = engine->as<float>(engine->plan().optimizerShard->expAvgSq);
  for (const device::ReplicaChunk::Piece &piece : mine->pieces)
    pieces.push_back({flatParams + piece.flat, shardExpAvg + (piece.flat - lo), shardExpAvgSq + (piece.flat - lo),
                      piece.flat, piece.length, piece.decay});
  normRuns = std::move(mine->normRuns);
  return {};
}

std::string Run::distributedOptimizerStep(int64_t iteration, double &gradNorm) {
  auto fail = [&](const std::string &what, const std::string &error) {
    return "iteration " + std::to_string(iteration) + ": the distributed optimizer's " + what + ": " + error;
  };
  // The replicas' gradients summed, each replica receiving its chunk, in place in the gradients arena (whose
  // padding past the arena's end stays zero).
  const bool several = replicas && dpSize > 1; // one replica: its chunk is the whole arena, nothing to exchange
  if (several)
    if (std::string error = replicas->reduceScatter(flatGrads, flatGrads + dpRank * chunk, chunk,
                                                    plan::DType::F32, comm::ReduceOp::Sum);
        !error.empty())
      return fail("reduce-scatter", error);
  // The norm over the chunks: each element counted by one tensor-parallel rank of one replica.
  double sum = 0;
  for (const auto &[at, length] : normRuns)
    sum += cpu::sumOfSquares<float>(length, flatGrads + at);
  if (group)
    if (std::string error = group->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return fail("gradient norm", error);
  if (several)
    if (std::string error = replicas->allReduce(&sum, 1, plan::DType::F64, comm::ReduceOp::Sum); !error.empty())
      return fail("gradient norm", error);
  if (std::string error = shareOverStages(sum); !error.empty())
    return fail("gradient norm", error);
  gradNorm = std::sqrt(sum);
  // The reduce-scatter carried any replica's inf or NaN into its owner's chunk, so the norm sees it.
  if (skipOverflow(gradNorm))
    return {};
  if (opts.clipGrad > 0) {
    double coefficient = opts.clipGrad / (gradNorm + 1e-6);
    if (coefficient < 1.0) {
      float *chunkData = flatGrads + lo;
      cpu::Index size = hi - lo;
      cpu::scaleTensors<float>(1, &chunkData, &size, static_cast<float>(coefficient));
    }
  }
  cpu::AdamWConfig adam{lrAt(iteration), opts.adamBeta1, opts.adamBeta2, opts.adamEps, opts.weightDecay,
                        iteration - skippedIterations};
  for (const Piece &piece : pieces)
    cpu::adamwStep<float>(piece.length, adam, piece.decay, piece.value, flatGrads + piece.flat, piece.expAvg,
                          piece.expAvgSq);
  // Every replica gets every chunk's new parameters, in place in the parameters arena.
  if (several)
    if (std::string error = replicas->allGather(flatParams + dpRank * chunk, flatParams, chunk, plan::DType::F32);
        !error.empty())
      return fail("all-gather", error);
  engine->weightsChanged(); // written through flatParams, which the engine cannot see
  return {};
}

std::string Run::deviceOptimizerStep(int64_t iteration, double &gradNorm) {
  // The CPU path's order on the device (DeviceOptimizer): unscale, global norm, then skip on an overflow (the
  // scaler learns of it from the non-finite norm, as skipOverflow always does) or clip and step AdamW.
  device::AdamWSettings adam{lrAt(iteration), opts.adamBeta1, opts.adamBeta2, opts.adamEps, opts.weightDecay,
                             iteration - skippedIterations};
  bool skipped = false;
  if (std::string error = device->optimizerStep(adam, opts.clipGrad, scaler ? scaler->scale() : 1.0, gradNorm,
                                                scaler ? &skipped : nullptr);
      !error.empty())
    return "iteration " + std::to_string(iteration) + ": the optimizer step: " + error;
  skipOverflow(gradNorm);
  return {};
}

std::string Run::gatherOptimizerState(FlatMoments &whole) {
  // Each replica holds its chunk of the moments: gather both moments' chunks into whole flat arrays (what a
  // checkpoint saves, and what any layout resumes from), in place.
  for (int moment = 0; moment < 2; ++moment) {
    const float *shard = moment == 0 ? shardExpAvg : shardExpAvgSq;
    std::vector<float> &out = moment == 0 ? wholeExpAvg : wholeExpAvgSq;
    out.assign(static_cast<size_t>(dpSize * chunk), 0.0f);
    std::copy(shard, shard + chunk, out.begin() + dpRank * chunk);
    if (replicas && dpSize > 1)
      if (std::string error = replicas->allGather(out.data() + dpRank * chunk, out.data(), chunk, plan::DType::F32);
          !error.empty())
        return "gathering the distributed optimizer's state: " + error;
  }
  whole = {wholeExpAvg.data(), wholeExpAvgSq.data()};
  return {};
}

void Run::scatterOptimizerState() {
  // This replica's chunk of whole flat moments (a loaded checkpoint's); the padding past the arena's end stays zero.
  std::fill(shardExpAvg, shardExpAvg + chunk, 0.0f);
  std::fill(shardExpAvgSq, shardExpAvgSq + chunk, 0.0f);
  std::copy(wholeExpAvg.begin() + lo, wholeExpAvg.begin() + hi, shardExpAvg);
  std::copy(wholeExpAvgSq.begin() + lo, wholeExpAvgSq.begin() + hi, shardExpAvgSq);
}

} // namespace megatron::train
