//===- StepChecker.cpp - A plan's generated kernels against the CPU engine, step by step ---===//

#include "StepChecker.h"

#include "DeviceValues.h"

#include "runtime/device/DeviceBackend.h"
#include "runtime/device/KernelLaunch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <sstream>

namespace megatron::cudasim {

using device::deviceBytes;

namespace {

using plan::DType;

bool sixteenBit(DType dtype) { return dtype == DType::BF16 || dtype == DType::F16; }

/// How far a generated output may be from the CPU's, relative to the output's scale (its largest |value|).
/// Both backends compute in f32 (f64 for f64 buffers); they differ in the order of reductions (warp trees against
/// the CPU's 16 lanes) and in exp/tanh/erf (the host's libm in the simulator, polynomials within ~5e-7 on the
/// CPU), so an f32 result differs by a few f32 roundings of the largest terms.
double relativeTolerance(DType dtype) { return dtype == DType::F64 ? 1e-12 : 1e-5; }

uint16_t sixteenBitPattern(DType dtype, float value) {
  return dtype == DType::BF16 ? __float2bfloat16_rn(value).x : __float2half_rn(value).x;
}

/// Distance between two 16-bit values in units in the last place (the formats are sign-magnitude).
int ulpDistance(uint16_t a, uint16_t b) {
  auto ordered = [](uint16_t h) { return h & 0x8000u ? -int(h & 0x7fffu) : int(h); };
  return std::abs(ordered(a) - ordered(b));
}

/// Element i of buffer `id` as the CPU engine holds it (bf16 and f16 as f32, Engine::storageType).
double readCpu(runtime::Engine &engine, int id, int64_t i) {
  const DType stored = runtime::Engine::storageType(engine.buffer(id).dtype);
  return readDevice(stored, static_cast<const std::byte *>(engine.data(id)), i);
}

std::string describe(const plan::Buffer &b) {
  std::string text = std::string(plan::toString(b.dtype)) + " [";
  for (size_t i = 0; i < b.shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(b.shape[i]);
  return text + "]";
}

/// The position in a CPU index error ("... at position 17 is outside [0, 128)"), or ~0 without an error.
unsigned long long cpuBadPosition(const std::string &error) {
  const size_t at = error.find("at position ");
  return at == std::string::npos ? ~0ull : std::stoull(error.substr(at + 12));
}

std::string format(double value) {
  std::ostringstream text;
  text.precision(9);
  text << value;
  return text.str();
}

} // namespace

StepChecker::StepChecker(runtime::Engine &engine, const codegen::KernelSet &kernels, const KernelLibrary &library)
    : engine(engine), kernels(kernels), library(library) {
  for (const codegen::StepPlan &step : kernels.steps)
    stepPlans[{step.ref.program, step.ref.step}] = &step;
  for (int arena = 0; arena < plan::kNumArenas; ++arena)
    arenas.emplace_back(size_t(engine.plan().allocatedBytes(plan::Arena(arena))));
  before.resize(arenas.size());
}

std::byte *StepChecker::deviceAddress(int buffer) {
  const plan::Buffer &b = engine.buffer(buffer);
  return arenas[size_t(b.arena)].data() + b.offset;
}

void StepChecker::upload(int buffer) {
  const plan::Buffer &b = engine.buffer(buffer);
  std::byte *device = deviceAddress(buffer);
  for (int64_t i = 0; i < b.numElements(); ++i)
    writeDevice(b.dtype, device, i, readCpu(engine, buffer, i));
}

std::string StepChecker::compareOutput(const plan::Step &step, size_t output, const std::string &where) {
  const int id = step.outputs[output];
  const plan::Buffer &b = engine.buffer(id);
  const std::byte *device = deviceAddress(id);
  const int64_t n = b.numElements();
  double scale = 0;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(readCpu(engine, id, i)))
      scale = std::max(scale, std::fabs(readCpu(engine, id, i)));
  const double tolerance = relativeTolerance(b.dtype) * std::max(scale, 1e-30);

  double worstRelative = 0;
  int worstUlps = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = readDevice(b.dtype, device, i), c = readCpu(engine, id, i);
    if ((std::isnan(d) && std::isnan(c)) || d == c)
      continue;
    const double diff = std::fabs(d - c); // inf or NaN when one side is not finite: never within tolerance
    const int ulps = sixteenBit(b.dtype)
                         ? ulpDistance(sixteenBitPattern(b.dtype, float(d)), sixteenBitPattern(b.dtype, float(c)))
                         : 0;
    // A 16-bit output may differ by one unit of the format: both round the same f32 result, which the two
    // backends compute to within f32 rounding.
    const bool ok = std::isfinite(diff) && (diff <= tolerance || (sixteenBit(b.dtype) && ulps <= 1));
    const double relative = std::isfinite(diff) ? diff / std::max(scale, 1e-30) : INFINITY;
    if (!ok)
      return where + ": output " + std::to_string(output) + " (" + describe(b) + ") element " + std::to_string(i) +
             ": simulated kernel " + format(d) + ", CPU " + format(c) + " (|difference| " + format(diff) + ", " +
             format(relative) + " of the output's scale " + format(scale) +
             (sixteenBit(b.dtype) ? ", " + std::to_string(ulps) + " ulps" : std::string()) + "; tolerance " +
             format(relativeTolerance(b.dtype)) + (sixteenBit(b.dtype) ? " or 1 ulp" : "") + ")";
    worstRelative = std::max(worstRelative, relative);
    worstUlps = std::max(worstUlps, ulps);
  }
  OpSummary &summary = ops[{step.op, b.dtype}];
  summary.worstRelative = std::max(summary.worstRelative, worstRelative);
  summary.worstUlps = std::max(summary.worstUlps, worstUlps);
  return {};
}

std::string StepChecker::checkStrayWrites(const plan::Step &step, const std::string &where) {
  for (size_t arena = 0; arena < arenas.size(); ++arena) {
    // The byte ranges the step may write.
    std::vector<std::pair<int64_t, int64_t>> allowed;
    for (int id : step.outputs) {
      const plan::Buffer &b = engine.buffer(id);
      if (size_t(b.arena) == arena)
        allowed.emplace_back(b.offset, b.offset + b.numElements() * int64_t(deviceBytes(b.dtype)));
    }
    const std::vector<std::byte> &now = arenas[arena], &old = before[arena];
    for (size_t i = 0; i < now.size(); ++i) {
      if (now[i] == old[i])
        continue;
      const bool inside = std::any_of(allowed.begin(), allowed.end(), [&](const auto &range) {
        return int64_t(i) >= range.first && int64_t(i) < range.second;
      });
      if (!inside)
        return where + ": the kernels wrote byte " + std::to_string(i) + " of the " +
               plan::toString(plan::Arena(arena)) + " arena, outside the step's outputs";
    }
  }
  return {};
}

std::string StepChecker::runStep(const std::string &program, size_t index, const runtime::RunContext &context) {
  auto found = stepPlans.find({program, int(index)});
  const codegen::StepPlan *stepPlan = found == stepPlans.end() ? nullptr : found->second;
  if (!stepPlan || stepPlan->backend != codegen::StepBackend::Generated)
    return engine.runStep(program, index, context);

  const plan::Step &step = engine.plan().program(program)->steps[index];
  std::string where = "step " + std::to_string(index) + " of " + program + " (" + step.op +
                      (step.loc.empty() ? "" : " at '" + step.loc + "'") + "), kernels";
  for (int k : stepPlan->kernels)
    where += " " + kernels.kernels[size_t(k)].name;

  // Outputs start as NaN bytes (a kernel that reads what it has not written shows), then the inputs and the
  // accumulating outputs get the CPU's values; an output aliasing an input gets the input's.
  for (int id : step.outputs) {
    const plan::Buffer &b = engine.buffer(id);
    if (b.arena == plan::Arena::Stash)
      return where + ": the checker does not simulate stash slots";
    std::memset(deviceAddress(id), 0xff, size_t(b.numElements()) * deviceBytes(b.dtype));
  }
  for (int id : step.inputs)
    upload(id);
  for (size_t o = 0; o < step.outputs.size(); ++o)
    if (step.accumulate[o])
      upload(step.outputs[o]);
  before = arenas;
  indexStatus = ~0ull;

  bool reportsIndices = false;
  for (int k : stepPlan->kernels) {
    const codegen::CudaKernel &kernel = kernels.kernels[size_t(k)];
    // Bound as the device engine binds them, with the values the CUDA launcher supplies from the same RunContext.
    std::string error;
    std::optional<device::KernelLaunch> launch = device::KernelLaunch::bind(
        kernel, step, [this](int id) -> void * { return deviceAddress(id); }, error);
    if (!launch)
      return where + ": " + error;
    reportsIndices = reportsIndices || launch->reportsIndices();
    device::RuntimeValues values;
    values.tpRank = engine.parallelRank().tpRank;
    values.dropoutSeed = context.dropoutSeed;
    values.training = context.training;
    values.lossScale = context.lossScale;
    values.indexStatus = &indexStatus;
    if (error = library.launch(kernel, launch->arguments(values)); !error.empty())
      return where + ": " + error;
  }

  const std::string cpuError = engine.runStep(program, index, context);
  if (reportsIndices && indexStatus != cpuBadPosition(cpuError))
    return where + ": the index status is " + std::to_string(indexStatus) + " but the CPU step says '" +
           (cpuError.empty() ? "no error" : cpuError) + "'";
  if (!cpuError.empty())
    return cpuError; // the CPU refused the data too (and the status agreed): its outputs say nothing

  ++checked;
  // Trailing workspace outputs (plan attr workspace_outputs) hold what a device backend passes between a step's
  // kernels; the CPU does not write them, so there is nothing to compare.
  auto workspace = step.attrs.find("workspace_outputs");
  const size_t compared = step.outputs.size() - (workspace == step.attrs.end()
                                                     ? 0
                                                     : size_t(std::get<int64_t>(workspace->second)));
  for (size_t o = 0; o < compared; ++o)
    if (std::string error = compareOutput(step, o, where); !error.empty())
      return error;
  std::set<plan::DType> dtypes;
  for (size_t o = 0; o < compared; ++o)
    if (dtypes.insert(engine.buffer(step.outputs[o]).dtype).second)
      ++ops[{step.op, engine.buffer(step.outputs[o]).dtype}].steps;
  return checkStrayWrites(step, where);
}

} // namespace megatron::cudasim
