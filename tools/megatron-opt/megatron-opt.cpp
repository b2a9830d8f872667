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

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::DialectRegistry registry;
  registry.insert<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::registerTransformsPasses();
  mlir::mt::registerMtPasses();

  auto [inputFilename, outputFilename] =
      mlir::registerAndParseCLIOptions(argc, argv, "Megatron compiler driver\n", registry);

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
