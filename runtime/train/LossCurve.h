//===- LossCurve.h - The loss curve as an SVG picture -----------*- C++ -*-===//

#ifndef MEGATRON_RUNTIME_TRAIN_LOSSCURVE_H
#define MEGATRON_RUNTIME_TRAIN_LOSSCURVE_H

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace megatron::train {

struct LossCurve {
  std::vector<std::pair<int64_t, double>> train;      // (iteration, loss)
  std::vector<std::pair<int64_t, double>> validation; // (iteration, loss)
  double floor = -1;                                  // the data's entropy floor, drawn when >= 0
  std::string title;
};

/// A self-contained SVG: axes with ticks, the training loss as a line, validation points, the floor dashed.
/// Written by hand: a few dozen lines of SVG need no plotting library, and the runtime stays dependency-free.
std::string renderSvg(const LossCurve &curve);

/// The same curve as text for the terminal: `rows` lines of `columns` characters, '*' for the training loss
/// (mean per column), 'o' for validation points, '-' for the floor, with the loss scale on the left.
std::string renderText(const LossCurve &curve, int columns = 60, int rows = 12);

} // namespace megatron::train

#endif // MEGATRON_RUNTIME_TRAIN_LOSSCURVE_H
