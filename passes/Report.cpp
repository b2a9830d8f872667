//===- Report.cpp - Prints what a model costs ------------------------------===//
//
// The figures come from computeModelFigures (lib/Analysis), which later passes and megatron-run share; this pass
// only formats them.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"
#include "megatron/Analysis/ModelFiguresAnalysis.h"
#include "megatron/Schedule/PipelineSchedule.h"
#include "megatron/Support/AtomicFile.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

namespace mlir::mt {
#define GEN_PASS_DEF_MTREPORT
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using megatron::ModelFigures;

namespace {

/// "124.44 M" style: two decimals with an SI prefix, or the plain integer below 1000.
std::string withPrefix(uint64_t count, llvm::StringRef unit) {
  static const char *prefixes[] = {"k", "M", "G", "T", "P", "E"};
  if (count < 1000)
    return unit.empty() ? std::to_string(count) : std::to_string(count) + " " + unit.str();
  double value = static_cast<double>(count) / 1000.0;
  int i = 0;
  while (value >= 1000.0 && i < 5) {
    value /= 1000.0;
    ++i;
  }
  return llvm::formatv("{0:F2} {1}{2}", value, prefixes[i], unit).str();
}

/// "474.70 MiB" style, or plain bytes below 1 KiB.
std::string withBinaryPrefix(uint64_t bytes) {
  static const char *prefixes[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024.0;
  int i = 0;
  while (value >= 1024.0 && i < 5) {
    value /= 1024.0;
    ++i;
  }
  return llvm::formatv("{0:F2} {1}", value, prefixes[i]).str();
}

/// The pipeline schedule the report describes, simulated.
struct PipelineFigures {
  int64_t stages = 1, virtualStages = 1, microBatches = 1;
  megatron::schedule::Timeline timeline;
};

void printPipeline(llvm::raw_ostream &os, const PipelineFigures &p) {
  os << "  pipeline: " << p.stages << " stages, " << p.microBatches << " micro-batches per data-parallel replica, "
     << (p.virtualStages > 1 ? "interleaved 1F1B with " + std::to_string(p.virtualStages) + " model chunks per stage"
                             : std::string("1F1B"))
     << "\n";
  os << llvm::formatv("    bubble: {0:F2}% of the step; the first stage holds the activations of {1:F2} "
                      "micro-batches at its peak\n",
                      100.0 * p.timeline.bubbleFraction, p.timeline.peakInFlight.front());
}

void printText(llvm::raw_ostream &os, StringRef model, const ModelFigures &f) {
  os << "mt-report: " << (model.empty() ? "model" : model) << "\n";
  os << "  parameters: " << f.parameterCount << " (" << withPrefix(f.parameterCount, "") << ") in "
     << f.parameterTensors << " tensors\n";
  for (const auto &[component, count] : f.parametersByComponent)
    os << "    " << component << ": " << count << "\n";
  os << "  FLOPs per iteration: " << f.flopsPerIteration << " (" << withPrefix(f.flopsPerIteration, "FLOP")
     << ") = forward " << f.forwardFlopsPerIteration << " + backward " << f.backwardFlopsPerIteration << "\n";
  os << "    micro-batches per iteration: " << f.microBatchesPerIteration << ", forward FLOPs per micro-batch: "
     << f.forwardFlopsPerMicroBatch << "\n";
  os << "  weights: " << f.weightBytes << " bytes (" << withBinaryPrefix(f.weightBytes) << ", " << f.weightDtype
     << ")\n";
  os << "  gradients: " << f.gradientBytes << " bytes (" << withBinaryPrefix(f.gradientBytes) << ", f32)\n";
  os << "  optimizer state: " << f.optimizerStateBytes << " bytes (" << withBinaryPrefix(f.optimizerStateBytes)
     << ", AdamW moments in f32" << (f.weightDtype == "f32" ? "" : " and f32 master weights") << ")\n";
  os << "  model state: " << f.modelStateBytes() << " bytes (" << withBinaryPrefix(f.modelStateBytes()) << ")\n";
}

void printJson(llvm::raw_ostream &os, StringRef model, const ModelFigures &f, const PipelineFigures *pipeline) {
  llvm::json::Object components;
  for (const auto &[component, count] : f.parametersByComponent)
    components[component] = static_cast<int64_t>(count);
  // JSON numbers are signed 64-bit here; every figure passed the analysis' overflow check, and the ones that can
  // exceed 2^63 in principle (FLOPs) are also given as exact decimal strings.
  llvm::json::Object report{
      {"model", model},
      {"parameters", static_cast<int64_t>(f.parameterCount)},
      {"parameter_tensors", static_cast<int64_t>(f.parameterTensors)},
      {"parameters_by_component", std::move(components)},
      {"micro_batches_per_iteration", f.microBatchesPerIteration},
      {"forward_flops_per_micro_batch", std::to_string(f.forwardFlopsPerMicroBatch)},
      {"forward_flops_per_iteration", std::to_string(f.forwardFlopsPerIteration)},
      {"backward_flops_per_iteration", std::to_string(f.backwardFlopsPerIteration)},
      {"flops_per_iteration", std::to_string(f.flopsPerIteration)},
      {"weight_dtype", f.weightDtype},
      {"weight_bytes", static_cast<int64_t>(f.weightBytes)},
      {"gradient_bytes", static_cast<int64_t>(f.gradientBytes)},
      {"optimizer_state_bytes", static_cast<int64_t>(f.optimizerStateBytes)},
      {"model_state_bytes", static_cast<int64_t>(f.modelStateBytes())},
  };
  if (pipeline)
    report["pipeline"] = llvm::json::Object{
        {"stages", pipeline->stages},
        {"virtual_stages", pipeline->virtualStages},
        {"micro_batches_per_replica", pipeline->microBatches},
        {"bubble_fraction", pipeline->timeline.bubbleFraction},
        {"first_stage_peak_micro_batches", pipeline->timeline.peakInFlight.front()}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(report))) << "\n";
}

struct MtReportPass : mt::impl::MtReportBase<MtReportPass> {
  using MtReportBase::MtReportBase;

  /// The schedule of the iteration's micro-batches per replica, simulated with one time unit per stage forward.
  FailureOr<PipelineFigures> simulatePipeline(ModuleOp module, int64_t microBatchesPerIteration) {
    PipelineFigures p;
    p.stages = pipelineParallel;
    p.virtualStages = virtualPipeline;
    int64_t replicas = dataParallel;
    if (replicas == 0) {
      auto attr = module->getAttrOfType<IntegerAttr>(mt::kDataParallelAttr);
      replicas = attr ? attr.getInt() : 1;
    }
    if (p.stages < 1 || p.virtualStages < 1 || replicas < 1)
      return emitError(module.getLoc(), "mt-report: pipeline-parallel, virtual-pipeline and data-parallel must be positive");
    if (microBatchesPerIteration % replicas != 0)
      return emitError(module.getLoc(), "mt-report: the ")
             << microBatchesPerIteration << " micro-batches of an iteration do not split over " << replicas
             << " data-parallel replicas";
    p.microBatches = microBatchesPerIteration / replicas;
    std::string error;
    megatron::schedule::Schedule schedule = megatron::schedule::pipelineSchedule(
        static_cast<int>(p.stages), static_cast<int>(p.microBatches), static_cast<int>(p.virtualStages), error);
    if (error.empty())
      p.timeline = megatron::schedule::simulate(schedule, /*forwardTime=*/1.0, /*backwardTime=*/2.0, error);
    if (!error.empty())
      return emitError(module.getLoc(), "mt-report: ") << error;
    if (!scheduleTrace.empty()) {
      // One time unit (a stage's forward of one micro-batch) is drawn as a millisecond.
      std::string trace = megatron::schedule::chromeTrace(p.timeline, 1000.0);
      if (std::string problem = megatron::writeFileAtomically(scheduleTrace, trace); !problem.empty())
        return emitError(module.getLoc(), "mt-report: ") << problem;
    }
    return p;
  }

  LogicalResult initialize(MLIRContext *context) override {
    if (format != "text" && format != "json")
      return emitError(UnknownLoc::get(context))
             << "mt-report: unknown format '" << format << "'; expected text or json";
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<ModelFigures> figures = mt::computeModelFigures(module);
    if (failed(figures))
      return signalPassFailure();
    StringRef model;
    if (auto name = module->getAttrOfType<StringAttr>("mt.model"))
      model = name.getValue();
    std::optional<PipelineFigures> pipeline;
    if (pipelineParallel > 1 || virtualPipeline > 1) {
      FailureOr<PipelineFigures> simulated = simulatePipeline(module, figures->microBatchesPerIteration);
      if (failed(simulated))
        return signalPassFailure();
      pipeline = std::move(*simulated);
    }
    if (format == "json") {
      printJson(llvm::outs(), model, *figures, pipeline ? &*pipeline : nullptr);
    } else {
      printText(llvm::outs(), model, *figures);
      if (pipeline)
        printPipeline(llvm::outs(), *pipeline);
    }
    llvm::outs().flush();
    markAllAnalysesPreserved();
  }
};

} // namespace
