//===- LossCurve.cpp - The loss curve as an SVG picture --------------------===//

#include "LossCurve.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace megatron::train {

namespace {
std::string number(double value, const char *format = "%.4g") {
  char text[32];
  std::snprintf(text, sizeof text, format, value);
  return text;
}
} // namespace

std::string renderSvg(const LossCurve &curve) {
  const double width = 720, height = 420, left = 70, right = 20, top = 40, bottom = 50;
  int64_t lastIteration = 1;
  double lo = curve.floor >= 0 ? curve.floor : 1e300, hi = -1e300;
  for (const auto *series : {&curve.train, &curve.validation})
    for (auto [iteration, loss] : *series) {
      lastIteration = std::max(lastIteration, iteration);
      lo = std::min(lo, loss);
      hi = std::max(hi, loss);
    }
  if (hi < lo) {
    lo = 0;
    hi = 1;
  }
  double pad = (hi - lo) * 0.05 + 1e-9;
  lo = std::max(0.0, lo - pad);
  hi += pad;
  auto x = [&](double iteration) { return left + (width - left - right) * iteration / lastIteration; };
  auto y = [&](double loss) { return top + (height - top - bottom) * (hi - loss) / (hi - lo); };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(width) + "\" height=\"" +
                    number(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + number(width / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + curve.title +
         "</text>\n";
  // Axes, ticks and labels.
  svg += "<path d=\"M" + number(left) + " " + number(top) + " V" + number(height - bottom) + " H" +
         number(width - right) + "\" stroke=\"black\" fill=\"none\"/>\n";
  for (int i = 0; i <= 5; ++i) {
    double loss = lo + (hi - lo) * i / 5, iteration = lastIteration * i / 5.0;
    svg += "<text x=\"" + number(left - 6) + "\" y=\"" + number(y(loss) + 4) + "\" text-anchor=\"end\">" +
           number(loss, "%.2f") + "</text>\n";
    svg += "<text x=\"" + number(x(iteration)) + "\" y=\"" + number(height - bottom + 18) +
           "\" text-anchor=\"middle\">" + number(std::round(iteration), "%.0f") + "</text>\n";
  }
  svg += "<text x=\"" + number((left + width - right) / 2) + "\" y=\"" + number(height - 8) +
         "\" text-anchor=\"middle\">iteration</text>\n";
  svg += "<text x=\"16\" y=\"" + number((top + height - bottom) / 2) + "\" transform=\"rotate(-90 16 " +
         number((top + height - bottom) / 2) + ")\" text-anchor=\"middle\">loss (nats per token)</text>\n";
  if (curve.floor >= 0) {
    svg += "<line x1=\"" + number(left) + "\" x2=\"" + number(width - right) + "\" y1=\"" + number(y(curve.floor)) +
           "\" y2=\"" + number(y(curve.floor)) + "\" stroke=\"gray\" stroke-dasharray=\"6 4\"/>\n";
    // Below the dashed line at the left, where a falling loss curve never is.
    svg += "<text x=\"" + number(left + 6) + "\" y=\"" + number(y(curve.floor) + 14) +
           "\" fill=\"gray\">entropy floor " + number(curve.floor, "%.3f") + "</text>\n";
  }
  if (!curve.train.empty()) {
    std::string d;
    for (auto [iteration, loss] : curve.train)
      d += (d.empty() ? "M" : " L") + number(x(iteration), "%.1f") + " " + number(y(loss), "%.1f");
    svg += "<path d=\"" + d + "\" stroke=\"#1f77b4\" stroke-width=\"1.5\" fill=\"none\"/>\n";
  }
  for (auto [iteration, loss] : curve.validation)
    svg += "<circle cx=\"" + number(x(iteration), "%.1f") + "\" cy=\"" + number(y(loss), "%.1f") +
           "\" r=\"3.5\" fill=\"#d62728\"/>\n";
  svg += "<text x=\"" + number(width - right - 4) + "\" y=\"" + number(top + 14) +
         "\" text-anchor=\"end\" fill=\"#1f77b4\">training loss</text>\n";
  svg += "<text x=\"" + number(width - right - 4) + "\" y=\"" + number(top + 30) +
         "\" text-anchor=\"end\" fill=\"#d62728\">validation loss</text>\n";
  return svg + "</svg>\n";
}

std::string renderText(const LossCurve &curve, int columns, int rows) {
  if (curve.train.empty())
    return {};
  int64_t last = curve.train.back().first;
  double lo = curve.floor >= 0 ? curve.floor : 1e300, hi = -1e300;
  for (auto [iteration, loss] : curve.train) {
    lo = std::min(lo, loss);
    hi = std::max(hi, loss);
  }
  if (hi - lo < 1e-9)
    hi = lo + 1e-9;
  std::vector<std::string> grid(static_cast<size_t>(rows), std::string(static_cast<size_t>(columns), ' '));
  auto rowOf = [&](double loss) {
    int row = static_cast<int>(std::lround((hi - loss) / (hi - lo) * (rows - 1)));
    return std::clamp(row, 0, rows - 1);
  };
  auto columnOf = [&](int64_t iteration) {
    return std::clamp(static_cast<int>((iteration - 1) * columns / std::max<int64_t>(last, 1)), 0, columns - 1);
  };
  if (curve.floor >= 0)
    grid[static_cast<size_t>(rowOf(curve.floor))].assign(static_cast<size_t>(columns), '-');
  std::vector<double> sum(static_cast<size_t>(columns), 0.0);
  std::vector<int> count(static_cast<size_t>(columns), 0);
  for (auto [iteration, loss] : curve.train) {
    sum[static_cast<size_t>(columnOf(iteration))] += loss;
    ++count[static_cast<size_t>(columnOf(iteration))];
  }
  for (int c = 0; c < columns; ++c)
    if (count[static_cast<size_t>(c)])
      grid[static_cast<size_t>(rowOf(sum[static_cast<size_t>(c)] / count[static_cast<size_t>(c)]))]
          [static_cast<size_t>(c)] = '*';
  for (auto [iteration, loss] : curve.validation)
    if (loss >= lo && loss <= hi)
      grid[static_cast<size_t>(rowOf(loss))][static_cast<size_t>(columnOf(iteration))] = 'o';
  std::string text;
  for (int r = 0; r < rows; ++r)
    text += "  " + number(hi - (hi - lo) * r / (rows - 1), "%6.2f") + " |" + grid[static_cast<size_t>(r)] + "\n";
  text += "         +" + std::string(static_cast<size_t>(columns), '-') + "\n";
  text += "          iteration 1" + std::string(static_cast<size_t>(std::max(0, columns - 11 - 6)), ' ') +
          number(static_cast<double>(last), "%6.0f") + "\n";
  text += "          * training loss   o validation loss" +
          (curve.floor >= 0 ? "   - entropy floor " + number(curve.floor, "%.3f") : std::string()) + "\n";
  return text;
}

} // namespace megatron::train
