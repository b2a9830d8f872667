//===- StepChecker.cpp - A plan's generated kernels against the CPU engine, step by step ---===//

#include "StepChecker.h"

#include "DeviceValues.h"
#include "EngineValues.h"

#include "runtime/device/KernelLaunch.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>

namespace megatron::test {

using device::deviceBytes;

namespace {

using plan::DType;

bool sixteenBit(DType dtype) { return dtype == DType::BF16 || dtype == DType::F16; }

uint16_t sixteenBitPattern(DType dtype, float value) {
  return dtype == DType::BF16 ? __float2bfloat16_rn(value).x : __float2half_rn(value).x;
}

/// Distance between two 16-bit values in units in the last place (the formats are sign-magnitude).
int ulpDistance(uint16_t a, uint16_t b) {
  auto ordered = [](uint16_t h) { return h & 0x8000u ? -int(h & 0x7fffu) : int(h); };
  return std::abs(ordered(a) - ordered(b));
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

StepChecker::StepChecker(runtime::Engine &engine, const codegen::KernelSet &kernels, device::DeviceBackend &backend,
                         const StepTolerances &tolerances)
    : engine(engine), kernels(kernels), backend(backend), tolerances(tolerances) {
  for (const codegen::StepPlan &step : kernels.steps)
    stepPlans[{step.ref.program, step.ref.step}] = &step;
}

std::unique_ptr<StepChecker> StepChecker::create(runtime::Engine &engine, const codegen::KernelSet &kernels,
                                                 device::DeviceBackend &backend, const StepTolerances &tolerances,
                                                 std::string &error) {
  std::unique_ptr<StepChecker> checker(new StepChecker(engine, kernels, backend, tolerances));
  for (int arena = 0; arena < plan::kNumArenas; ++arena) {
    const int64_t bytes = engine.plan().allocatedBytes(plan::Arena(arena));
    checker->arenas.emplace_back();
    if (bytes == 0)
      continue;
    checker->arenas.back() = DeviceMemory(backend, size_t(bytes), error);
    if (!checker->arenas.back()) {
      error = "cannot allocate the " + std::string(plan::toString(plan::Arena(arena))) + " arena (" +
              std::to_string(bytes) + " bytes) on " + backend.describe() + ": " + error;
      return nullptr;
    }
  }
  checker->indexStatus = DeviceMemory(backend, sizeof(unsigned long long), error);
  if (!checker->indexStatus) {
    error = "cannot allocate the index-status word on " + backend.describe() + ": " + error;
    return nullptr;
  }
  return checker;
}

std::byte *StepChecker::deviceAddress(int buffer) const {
  const plan::Buffer &b = engine.buffer(buffer);
  return arenas[size_t(b.arena)].data() + b.offset;
}

std::string StepChecker::upload(int buffer) {
  const std::vector<std::byte> bytes = deviceStorage(engine, buffer);
  return bytes.empty() ? std::string() : backend.copyToDevice(deviceAddress(buffer), bytes.data(), bytes.size());
}

std::string StepChecker::download(std::vector<std::vector<std::byte>> &into) {
  into.resize(arenas.size());
  for (size_t arena = 0; arena < arenas.size(); ++arena) {
    into[arena].resize(arenas[arena].bytes());
    if (arenas[arena])
      if (std::string error = backend.copyToHost(into[arena].data(), arenas[arena].data(), arenas[arena].bytes());
          !error.empty())
        return error;
  }
  return {};
}

std::string StepChecker::launchKernels(const plan::Step &step, const codegen::StepPlan &stepPlan,
                                       const runtime::RunContext &context, bool &reportsIndices) {
  for (int k : stepPlan.kernels) {
    const codegen::CudaKernel &kernel = kernels.kernels[size_t(k)];
    // Bound as the device engine binds them, with the values its launcher supplies from the same RunContext.
    std::string error;
    std::optional<device::KernelLaunch> launch = device::KernelLaunch::bind(
        kernel, step, [this](int id) -> void * { return deviceAddress(id); }, error);
    if (!launch)
      return error;
    reportsIndices = reportsIndices || launch->reportsIndices();
    device::RuntimeValues values;
    values.tpRank = engine.parallelRank().tpRank;
    values.dropoutSeed = context.dropoutSeed;
    values.training = context.training;
    values.lossScale = context.lossScale;
    values.indexStatus = indexStatus.data();
    if (error = backend.launch(kernel, launch->arguments(values)); !error.empty())
      return error;
  }
  return {};
}

std::string StepChecker::compareOutput(const plan::Step &step, size_t output, const std::string &where,
                                       double rounded) {
  const int id = step.outputs[output];
  const plan::Buffer &b = engine.buffer(id);
  const std::byte *device = after[size_t(b.arena)].data() + b.offset;
  const int64_t n = b.numElements();
  const std::vector<double> cpu = cpuValues(engine, id);
  double scale = 0;
  for (double c : cpu)
    if (std::isfinite(c))
      scale = std::max(scale, std::fabs(c));
  const double relativeTolerance = std::max(b.dtype == DType::F64 ? tolerances.f64 : tolerances.f32, rounded);
  const double tolerance = relativeTolerance * std::max(scale, 1e-30);

  double worstRelative = 0;
  int worstUlps = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = readDevice(b.dtype, device, i), c = cpu[size_t(i)];
    if ((std::isnan(d) && std::isnan(c)) || d == c)
      continue;
    const double diff = std::fabs(d - c); // inf or NaN when one side is not finite: never within tolerance
    const int ulps = sixteenBit(b.dtype)
                         ? ulpDistance(sixteenBitPattern(b.dtype, float(d)), sixteenBitPattern(b.dtype, float(c)))
                         : 0;
    // A 16-bit output may differ by a unit or two of the format: both round an f32 result that the two backends
    // compute to within f32 rounding, so one may land on the neighbouring 16-bit number.
    const bool ok =
        std::isfinite(diff) && (diff <= tolerance || (sixteenBit(b.dtype) && ulps <= tolerances.sixteenBitUlps));
    const double relative = std::isfinite(diff) ? diff / std::max(scale, 1e-30) : INFINITY;
    if (!ok)
      return where + ": output " + std::to_string(output) + " (" + describe(b) + ") element " + std::to_string(i) +
             ": device " + format(d) + ", CPU " + format(c) + " (|difference| " + format(diff) + ", " +
             format(relative) + " of the output's scale " + format(scale) +
             (sixteenBit(b.dtype) ? ", " + std::to_string(ulps) + " ulps" : std::string()) + "; tolerance " +
             format(relativeTolerance) +
             (sixteenBit(b.dtype) ? " or " + std::to_string(tolerances.sixteenBitUlps) + " ulp" : "") + ")";
    worstRelative = std::max(worstRelative, relative);
    worstUlps = std::max(worstUlps, ulps);
  }
  OpSummary &summary = ops[{step.op, b.dtype}];
  summary.worstRelative = std::max(summary.worstRelative, worstRelative);
  summary.worstUlps = std::max(summary.worstUlps, worstUlps);
  return {};
}

std::string StepChecker::checkStrayWrites(const plan::Step &step, const std::string &where) const {
  for (size_t arena = 0; arena < after.size(); ++arena) {
    // The byte ranges the step may write.
    std::vector<std::pair<int64_t, int64_t>> allowed;
    for (int id : step.outputs) {
      const plan::Buffer &b = engine.buffer(id);
      if (size_t(b.arena) == arena)
        allowed.emplace_back(b.offset, b.offset + b.numElements() * int64_t(deviceBytes(b.dtype)));
    }
    const std::vector<std::byte> &now = after[arena], &old = before[arena];
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
  where += " on " + backend.describe();

  // Outputs start as NaN bytes (a kernel that reads what it has not written shows), then the inputs and the
  // accumulating outputs get the CPU's values; an output aliasing an input gets the input's.
  for (int id : step.outputs) {
    const plan::Buffer &b = engine.buffer(id);
    if (b.arena == plan::Arena::Stash)
      return where + ": the checker does not run steps on stash slots";
    const size_t bytes = size_t(b.numElements()) * deviceBytes(b.dtype);
    if (bytes > 0)
      if (std::string error = backend.fill(deviceAddress(id), 0xff, bytes); !error.empty())
        return where + ": " + error;
  }
  std::vector<int> uploads = step.inputs;
  for (size_t o = 0; o < step.outputs.size(); ++o)
    if (step.accumulate[o])
      uploads.push_back(step.outputs[o]);
  for (int id : uploads)
    if (std::string error = upload(id); !error.empty())
      return where + ": " + error;
  if (std::string error = backend.fill(indexStatus.data(), 0xff, indexStatus.bytes()); !error.empty())
    return where + ": " + error;
  if (std::string error = download(before); !error.empty())
    return where + ": " + error;

  bool reportsIndices = false;
  if (std::string error = launchKernels(step, *stepPlan, context, reportsIndices); !error.empty())
    return where + ": " + error;
  unsigned long long status = ~0ull;
  if (std::string error = backend.copyToHost(&status, indexStatus.data(), sizeof status); !error.empty())
    return where + ": " + error;

  const std::string cpuError = engine.runStep(program, index, context);
  if (reportsIndices && status != cpuBadPosition(cpuError))
    return where + ": the index status is " + std::to_string(status) + " but the CPU step says '" +
           (cpuError.empty() ? "no error" : cpuError) + "'";
  if (!cpuError.empty())
    return cpuError; // the CPU refused the data too (and the status agreed): its outputs say nothing

  if (std::string error = download(after); !error.empty())
    return where + ": " + error;
  ++checked;
  // Trailing workspace outputs (plan attr workspace_outputs) hold what a device backend passes between a step's
  // kernels; the CPU does not write them, so there is nothing to compare.
  auto workspace = step.attrs.find("workspace_outputs");
  const size_t compared = step.outputs.size() - (workspace == step.attrs.end()
                                                     ? 0
                                                     : size_t(std::get<int64_t>(workspace->second)));
  // A tensor-core step rounds products' operands to its first input's 16-bit type (see StepTolerances).
  double rounded = 0;
  for (int k : stepPlan->kernels)
    if (kernels.kernels[size_t(k)].role.find("tensor_core") != std::string::npos && !step.inputs.empty())
      rounded = tolerances.tensorCoreRoundoffs *
                (engine.buffer(step.inputs[0]).dtype == DType::F16 ? 0x1p-11 : 0x1p-8);
  for (size_t o = 0; o < compared; ++o)
    if (std::string error = compareOutput(step, o, where, rounded); !error.empty())
      return error;
  std::set<plan::DType> dtypes;
  for (size_t o = 0; o < compared; ++o)
    if (dtypes.insert(engine.buffer(step.outputs[o]).dtype).second)
      ++ops[{step.op, engine.buffer(step.outputs[o]).dtype}].steps;
  return checkStrayWrites(step, where);
}

} // namespace megatron::test
