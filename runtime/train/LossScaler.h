//===- LossScaler.h - fp16's loss scaling, as Megatron-LM's grad scalers -*- C++ -*-===//
//
// fp16 has 5 exponent bits: gradients below 2^-24 vanish and activations above 65504 overflow. Megatron multiplies
// the loss (here: the backward's seed) by a scale, divides the gradients by it before the optimizer, and skips a
// step whose gradients hold inf or NaN. DynamicGradScaler (--fp16 without --loss-scale) halves the scale after
// `hysteresis` overflowing steps and doubles it after `window` clean ones; ConstantGradScaler (--loss-scale) keeps
// it. megatron/core/optimizer/grad_scaler.py is the reference; docs/precision.md the manual. Plain C++.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_RUNTIME_TRAIN_LOSSSCALER_H
#define MEGATRON_RUNTIME_TRAIN_LOSSSCALER_H

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace megatron::train {

/// Megatron's flags, with its defaults.
struct LossScaleOptions {
  std::optional<double> constant; // --loss-scale: a fixed scale (any 16-bit plan)
  double initial = 4294967296.0;  // --initial-loss-scale (2^32)
  double minimum = 1.0;           // --min-loss-scale
  int64_t window = 1000;          // --loss-scale-window: clean steps before the scale doubles
  int64_t hysteresis = 2;         // --hysteresis: overflowing steps before the scale halves
  bool anyGiven = false;          // whether the user set any of them (refused for f32 plans)
};

class LossScaler {
public:
  /// Dynamic from options.initial, or constant at *options.constant.
  explicit LossScaler(const LossScaleOptions &options);

  double scale() const { return current; }
  bool dynamic() const { return !constant; }

  /// After a step: whether its gradients held inf or NaN (the step was skipped).
  void update(bool foundNonFinite);

  /// The state a checkpoint keeps for an exact resume, and its restore ("" or what is wrong with it).
  nlohmann::json state() const;
  std::string restore(const nlohmann::json &state);

private:
  bool constant;
  double current, minimum;
  int64_t window, hysteresis;
  int64_t growthTracker = 0;
  int64_t hysteresisTracker;
};

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_LOSSSCALER_H
