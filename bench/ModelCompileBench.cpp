//===- ModelCompileBench.cpp - Cost of generating and reporting a model ----===//
//
// Measures what `megatron-model --preset gpt3-175b | megatron-opt --mt-report` does, stage by stage, at the
// gpt3-175b shape with 12 to 384 layers:
//
//   Build       mlir::mt::buildModel from a resolved ModelConfig (megatron-model)
//   Verify      mlir::verify of the built module (megatron-model checks its own output)
//   Print       printing the module to text (megatron-model's output)
//   ParseVerify parsing that text in a fresh context and verifying it (megatron-opt's input)
//   Figures     mlir::mt::computeModelFigures (the work of --mt-report)
//   Pipeline    all of the above, plus megatron-opt printing its output module, in two fresh contexts, as the
//               two processes of the command line do (minus process start-up and pipe I/O)
//
// Every benchmark sets SetComplexityN(layers) and asks for an O(N) fit, so Google Benchmark prints the per-layer
// coefficient and the normalised RMS error of a linear fit (the fit has no constant term: a large fixed cost shows
// up as a large RMS). Contexts are created, and modules destroyed, outside the timed region of the stage
// benchmarks; the Pipeline benchmark times everything.
//
// Run: build/bin/model-compile-bench [--benchmark_filter=BM_Build] [--benchmark_min_time=1] [--benchmark_format=json]
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "megatron/Analysis/ModelFiguresAnalysis.h"
#include "megatron/Builder/ModelBuilder.h"
#include "megatron/Model/ModelConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include "llvm/Support/raw_ostream.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace {

/// gpt3-175b with `layers` transformer layers, resolved and checked.
megatron::ModelConfig gpt3Config(int64_t layers) {
  std::optional<megatron::ModelConfig> config = megatron::presetConfig("gpt3-175b");
  if (!config) {
    llvm::errs() << "model-compile-bench: no gpt3-175b preset\n";
    std::abort();
  }
  config->numLayers = layers;
  config->resolveDefaults();
  if (!config->validate().empty()) {
    llvm::errs() << "model-compile-bench: gpt3-175b with " << layers << " layers does not validate\n";
    std::abort();
  }
  return *config;
}

/// A context with the dialects megatron-model loads and megatron-opt registers.
std::unique_ptr<mlir::MLIRContext> makeContext() {
  mlir::DialectRegistry registry;
  registry.insert<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  auto context = std::make_unique<mlir::MLIRContext>(registry);
  context->loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  return context;
}

mlir::OwningOpRef<mlir::ModuleOp> build(mlir::MLIRContext &context, const megatron::ModelConfig &config) {
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::mt::buildModel(context, config);
  if (!module) {
    llvm::errs() << "model-compile-bench: buildModel failed\n";
    std::abort();
  }
  return module;
}

std::string print(mlir::ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  os.flush();
  return text;
}

/// Parses and verifies, as MlirOptMain does with its default --verify-each.
mlir::OwningOpRef<mlir::ModuleOp> parse(mlir::MLIRContext &context, const std::string &text) {
  mlir::ParserConfig parserConfig(&context, /*verifyAfterParse=*/true);
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString<mlir::ModuleOp>(text, parserConfig);
  if (!module) {
    llvm::errs() << "model-compile-bench: the printed model does not parse\n";
    std::abort();
  }
  return module;
}

megatron::ModelFigures figures(mlir::ModuleOp module) {
  mlir::FailureOr<megatron::ModelFigures> result = mlir::mt::computeModelFigures(module);
  if (mlir::failed(result)) {
    llvm::errs() << "model-compile-bench: computeModelFigures failed\n";
    std::abort();
  }
  return *result;
}

int64_t countOps(mlir::ModuleOp module) {
  int64_t ops = 0;
  module->walk([&](mlir::Operation *) { ++ops; });
  return ops;
}

/// The counters every benchmark reports: the size of the IR, and the time per layer.
void setCounters(benchmark::State &state, int64_t layers, int64_t ops, int64_t textBytes) {
  state.SetComplexityN(layers);
  state.counters["layers"] = static_cast<double>(layers);
  state.counters["ops"] = static_cast<double>(ops);
  state.counters["text_bytes"] = static_cast<double>(textBytes);
  // Seconds per layer per iteration (Google Benchmark prints it scaled, e.g. 1.2m = 1.2 ms per layer).
  state.counters["s_per_layer"] =
      benchmark::Counter(static_cast<double>(layers), benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}

/// The size of the IR at `layers` layers, computed once outside any timed region.
struct Sizes {
  int64_t ops;
  int64_t textBytes;
};
Sizes sizesOf(const megatron::ModelConfig &config) {
  std::unique_ptr<mlir::MLIRContext> context = makeContext();
  mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
  return {countOps(*module), static_cast<int64_t>(print(*module).size())};
}

void BM_Build(benchmark::State &state) {
  const int64_t layers = state.range(0);
  const megatron::ModelConfig config = gpt3Config(layers);
  const Sizes sizes = sizesOf(config);
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<mlir::MLIRContext> context = makeContext();
    state.ResumeTiming();
    mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
    benchmark::DoNotOptimize(module.get());
    state.PauseTiming();
    module = nullptr;
    context.reset();
    state.ResumeTiming();
  }
  setCounters(state, layers, sizes.ops, sizes.textBytes);
}

void BM_Verify(benchmark::State &state) {
  const int64_t layers = state.range(0);
  const megatron::ModelConfig config = gpt3Config(layers);
  std::unique_ptr<mlir::MLIRContext> context = makeContext();
  mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
  for (auto _ : state) {
    if (mlir::failed(mlir::verify(*module))) {
      state.SkipWithError("the built module does not verify");
      break;
    }
  }
  setCounters(state, layers, countOps(*module), static_cast<int64_t>(print(*module).size()));
}

void BM_Print(benchmark::State &state) {
  const int64_t layers = state.range(0);
  const megatron::ModelConfig config = gpt3Config(layers);
  std::unique_ptr<mlir::MLIRContext> context = makeContext();
  mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
  int64_t textBytes = 0;
  for (auto _ : state) {
    std::string text = print(*module);
    textBytes = static_cast<int64_t>(text.size());
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(state.iterations() * textBytes);
  setCounters(state, layers, countOps(*module), textBytes);
}

void BM_ParseVerify(benchmark::State &state) {
  const int64_t layers = state.range(0);
  const megatron::ModelConfig config = gpt3Config(layers);
  std::string text;
  int64_t ops = 0;
  {
    std::unique_ptr<mlir::MLIRContext> context = makeContext();
    mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
    text = print(*module);
    ops = countOps(*module);
  }
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<mlir::MLIRContext> context = makeContext();
    state.ResumeTiming();
    mlir::OwningOpRef<mlir::ModuleOp> module = parse(*context, text);
    benchmark::DoNotOptimize(module.get());
    state.PauseTiming();
    module = nullptr;
    context.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  setCounters(state, layers, ops, static_cast<int64_t>(text.size()));
}

void BM_Figures(benchmark::State &state) {
  const int64_t layers = state.range(0);
  const megatron::ModelConfig config = gpt3Config(layers);
  std::unique_ptr<mlir::MLIRContext> context = makeContext();
  mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
  for (auto _ : state) {
    megatron::ModelFigures result = figures(*module);
    benchmark::DoNotOptimize(result);
  }
  setCounters(state, layers, countOps(*module), static_cast<int64_t>(print(*module).size()));
}

/// Everything the two processes of `megatron-model | megatron-opt --mt-report` do in-process, each with its own
/// context: build, verify, print; parse and verify, compute the figures, print the output module.
void BM_Pipeline(benchmark::State &state) {
  const int64_t layers = state.range(0);
  const megatron::ModelConfig config = gpt3Config(layers);
  int64_t ops = 0;
  int64_t textBytes = 0;
  for (auto _ : state) {
    std::string text;
    {
      std::unique_ptr<mlir::MLIRContext> context = makeContext();
      mlir::OwningOpRef<mlir::ModuleOp> module = build(*context, config);
      if (mlir::failed(mlir::verify(*module))) {
        state.SkipWithError("the built module does not verify");
        break;
      }
      text = print(*module);
    }
    {
      std::unique_ptr<mlir::MLIRContext> context = makeContext();
      mlir::OwningOpRef<mlir::ModuleOp> module = parse(*context, text);
      megatron::ModelFigures result = figures(*module);
      benchmark::DoNotOptimize(result);
      std::string output = print(*module);
      benchmark::DoNotOptimize(output.data());
      ops = countOps(*module);
    }
    textBytes = static_cast<int64_t>(text.size());
  }
  setCounters(state, layers, ops, textBytes);
}

} // namespace

// 12, 24, 48, 96 (gpt3-175b itself), 192 and 384 layers. Unless --benchmark_min_time is given, a short minimum
// time (0.2 s) keeps the whole binary around 20 s on two cores; the large sizes then run a handful of iterations,
// enough at tens to hundreds of ms each.
int main(int argc, char **argv) {
  bool minTimeGiven = false;
  for (int i = 1; i < argc; ++i)
    minTimeGiven |= std::string(argv[i]).rfind("--benchmark_min_time", 0) == 0;

  const std::pair<const char *, void (*)(benchmark::State &)> benchmarks[] = {
      {"BM_Build", BM_Build},           {"BM_Verify", BM_Verify},   {"BM_Print", BM_Print},
      {"BM_ParseVerify", BM_ParseVerify}, {"BM_Figures", BM_Figures}, {"BM_Pipeline", BM_Pipeline},
  };
  for (const auto &[name, function] : benchmarks) {
    benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(name, function);
    for (int64_t layers : {12, 24, 48, 96, 192, 384})
      b->Arg(layers);
    b->ArgName("layers")->Unit(benchmark::kMillisecond)->Complexity(benchmark::oN);
    if (!minTimeGiven)
      b->MinTime(0.2);
  }

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
