//===- LrSchedule.cpp - Megatron-LM's learning-rate schedule ---------------===//

#include "LrSchedule.h"

#include <cmath>

namespace megatron::train {

std::optional<DecayStyle> parseDecayStyle(const std::string &name) {
  if (name == "constant")
    return DecayStyle::Constant;
  if (name == "linear")
    return DecayStyle::Linear;
  if (name == "cosine")
    return DecayStyle::Cosine;
  return std::nullopt;
}

const char *toString(DecayStyle style) {
  switch (style) {
  case DecayStyle::Constant:
    return "constant";
  case DecayStyle::Linear:
    return "linear";
  case DecayStyle::Cosine:
    return "cosine";
  }
  return "?";
}

double LrSchedule::at(int64_t step) const {
  if (warmupIters > 0 && step <= warmupIters)
    return lr * static_cast<double>(step) / static_cast<double>(warmupIters);
  if (style == DecayStyle::Constant)
    return lr;
  if (step > decayIters)
    return minLr;
  double ratio = static_cast<double>(step - warmupIters) / static_cast<double>(decayIters - warmupIters);
  double coefficient = style == DecayStyle::Linear ? 1.0 - ratio : 0.5 * (std::cos(M_PI * ratio) + 1.0);
  return minLr + coefficient * (lr - minLr);
}

} // namespace megatron::train
