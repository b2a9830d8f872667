//===- megatron-model.cpp - Writes a model's mt description ----------------===//
//
// Takes Megatron-LM's model flags (or a --preset), checks them, and prints the model as mt IR.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "megatron/Builder/ModelBuilder.h"
#include "megatron/Model/ModelFlags.h"
#include "megatron/Support/AtomicFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  megatron::ModelFlags flags;
  cl::opt<std::string> output("o", cl::desc("Output file (default: standard output)"), cl::value_desc("file"),
                              cl::init("-"));
  cl::ParseCommandLineOptions(argc, argv,
                              "megatron-model: writes the mt description of a GPT, BERT or T5 model from "
                              "Megatron-LM's flags\n\n"
                              "  megatron-model --preset gpt2-small --micro-batch-size 8 | megatron-opt --mt-report\n");

  std::vector<std::string> errors;
  std::optional<megatron::ModelConfig> config = flags.resolve(errors);
  if (!config) {
    for (const std::string &error : errors)
      llvm::errs() << "megatron-model: error: " << error << "\n";
    return EXIT_FAILURE;
  }

  mlir::MLIRContext context;
  context.loadDialect<mlir::mt::MtDialect, mlir::func::FuncDialect>();
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::mt::buildModel(context, *config);
  // A valid configuration always builds valid IR; if it does not, that is our bug, reported as such.
  if (mlir::failed(mlir::verify(*module))) {
    llvm::errs() << "megatron-model: internal error: the generated model does not verify; please report this "
                    "command line\n";
    return EXIT_FAILURE;
  }

  std::string text;
  llvm::raw_string_ostream os(text);
  // Locations name the module each op belongs to ("decoder.layers.3.mlp.linear_fc1"); they travel with the IR so
  // that later stages (plans, runtime errors, profiles) can speak of layers rather than of line numbers.
  module->print(os, mlir::OpPrintingFlags().enableDebugInfo(/*enable=*/true, /*prettyForm=*/false));
  os.flush();
  if (std::string error = megatron::writeOutput(output, text); !error.empty()) {
    llvm::errs() << "megatron-model: error: " << error << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
