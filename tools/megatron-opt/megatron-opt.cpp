//===- megatron-opt.cpp - mlir-opt for the Megatron compiler ---------------===//
//
// Registers the mt dialect, the upstream dialects the project uses and every pass, then runs MlirOptMain. The
// result is written through a temporary file and renamed into place only on success, so a failed run never
// truncates the user's previous output.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "passes/Passes.h"

#include "megatron/Support/AtomicFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <vector>

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::DialectRegistry registry;
  registry.insert<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::registerTransformsPasses();
  mlir::mt::registerMtPasses();

  // A pass's error names the op it is about; printing that op too (MLIR's default) would dump the whole model for
  // the module-level errors of the parallelism passes. The user can still ask for it.
  std::vector<char *> args(argv, argv + argc);
  std::string quiet = "--mlir-print-op-on-diagnostic=false";
  if (std::none_of(args.begin(), args.end(),
                   [](const char *arg) { return llvm::StringRef(arg).contains("mlir-print-op-on-diagnostic"); }))
    args.insert(args.begin() + 1, quiet.data());
  int count = static_cast<int>(args.size());
  char **values = args.data();
  auto [inputFilename, outputFilename] =
      mlir::registerAndParseCLIOptions(count, values, "Megatron compiler driver\n", registry);

  std::string errorMessage;
  std::unique_ptr<llvm::MemoryBuffer> input = mlir::openInputFile(inputFilename, &errorMessage);
  if (!input) {
    llvm::errs() << "megatron-opt: " << errorMessage << "\n";
    return EXIT_FAILURE;
  }

  std::string result;
  llvm::raw_string_ostream resultStream(result);
  mlir::MlirOptMainConfig config = mlir::MlirOptMainConfig::createFromCLOptions();
  if (mlir::failed(mlir::MlirOptMain(resultStream, std::move(input), registry, config)))
    return EXIT_FAILURE;

  if (std::string error = megatron::writeOutput(outputFilename, result); !error.empty()) {
    llvm::errs() << "megatron-opt: " << error << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
