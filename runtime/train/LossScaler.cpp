//===- LossScaler.cpp - fp16's loss scaling, as Megatron-LM's grad scalers -===//

#include "runtime/train/LossScaler.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace megatron::train {

LossScaler::LossScaler(const LossScaleOptions &options)
    : constant(options.constant.has_value()), current(options.constant.value_or(options.initial)),
      minimum(options.minimum), window(options.window), hysteresis(options.hysteresis),
      hysteresisTracker(options.hysteresis) {}

void LossScaler::update(bool foundNonFinite) {
  if (constant)
    return;
  // DynamicGradScaler.update: an overflow resets the growth count and, once `hysteresis` of them have come since
  // the last growth, halves the scale (not below the minimum); `window` clean steps in a row double it and
  // restore the hysteresis.
  if (foundNonFinite) {
    growthTracker = 0;
    if (--hysteresisTracker <= 0)
      current = std::max(current * 0.5, minimum);
    return;
  }
  if (++growthTracker == window) {
    growthTracker = 0;
    hysteresisTracker = hysteresis;
    current *= 2.0;
  }
}

nlohmann::json LossScaler::state() const {
  return {{"scale", current}, {"growth_tracker", growthTracker}, {"hysteresis_tracker", hysteresisTracker}};
}

std::string LossScaler::restore(const nlohmann::json &state) {
  if (!state.is_object() || !state.contains("scale") || !state["scale"].is_number() ||
      !state.contains("growth_tracker") || !state["growth_tracker"].is_number_integer() ||
      !state.contains("hysteresis_tracker") || !state["hysteresis_tracker"].is_number_integer())
    return "the loss scaler's state must hold scale, growth_tracker and hysteresis_tracker, got " + state.dump();
  double scale = state["scale"].get<double>();
  if (!(scale > 0) || !std::isfinite(scale))
    return "the loss scaler's scale must be a positive number, got " + state["scale"].dump();
  if (constant)
    return {}; // --loss-scale decides
  current = scale;
  growthTracker = state["growth_tracker"].get<int64_t>();
  hysteresisTracker = state["hysteresis_tracker"].get<int64_t>();
  return {};
}

} // namespace megatron::train
