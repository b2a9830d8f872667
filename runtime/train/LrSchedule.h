//===- LrSchedule.h - Megatron-LM's learning-rate schedule ------*- C++ -*-===//

#ifndef MEGATRON_RUNTIME_TRAIN_LRSCHEDULE_H
#define MEGATRON_RUNTIME_TRAIN_LRSCHEDULE_H

#include <cstdint>
#include <optional>
#include <string>

namespace megatron::train {

enum class DecayStyle { Constant, Linear, Cosine };
std::optional<DecayStyle> parseDecayStyle(const std::string &name);
const char *toString(DecayStyle style);

struct LrSchedule {
  double lr = 1e-4;      // --lr: the peak
  double minLr = 0.0;    // --min-lr
  int64_t warmupIters = 0;
  int64_t decayIters = 0; // --lr-decay-iters (default: --train-iters)
  DecayStyle style = DecayStyle::Linear;

  /// The learning rate after `step` completed iterations, as Megatron-LM's OptimizerParamScheduler.get_lr():
  /// a linear warmup from 0 to lr over warmupIters, then the decay from lr to minLr until decayIters, then minLr.
  double at(int64_t step) const;
};

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_LRSCHEDULE_H
