//===- MtParseVerifyFuzzer.cpp - libFuzzer target: parse and verify mt IR ---===//
//
// Feeds arbitrary bytes to the MLIR parser with the mt and func dialects loaded, verifies what parses, computes
// the model figures of what verifies, and round trips it through the printer (custom and generic forms).
//
// What counts as a bug (the fuzzer reports it; a plain `return 0` is a correctly rejected input):
//   - any crash, assertion, sanitizer report, hang or runaway allocation on any input: bad IR must be a
//     diagnostic, never a crash (docs/development.md);
//   - a verified module whose printed form does not parse and verify again, or does not print back to the same
//     text: a printer/parser mismatch. These call abort() after writing the diagnostics and the text to stderr.
//
// Built two ways (test/fuzz/CMakeLists.txt): as the libFuzzer binary mt-parse-verify-fuzzer (clang,
// -DMEGATRON_BUILD_FUZZERS=ON) and, with any compiler, as mt-fuzz-replay, which runs saved inputs through the
// same function (ctest fuzz-corpus-replay).
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtDialect.h"
#include "dialects/mt/MtOps.h"
#include "megatron/Analysis/ModelFiguresAnalysis.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace mlir;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
// LLVM's headers see ASan in our instrumented code and make the inline BumpPtrAllocator poison the slabs it hands
// out, which the uninstrumented MLIR libraries then use without unpoisoning: a false use-after-poison on the first
// dialect registration. Ignoring manual poisoning keeps every real heap, stack and global check.
extern "C" const char *__asan_default_options() { return "allow_user_poisoning=0"; }
#endif
#endif

namespace {
/// Diagnostics are swallowed while fuzzing (rejecting bad input is the expected outcome), but the last ones are
/// kept so that a failed round trip can show why the printed text did not read back.
struct FuzzState {
  MLIRContext context;
  bool captureDiagnostics = false; // set while a round trip parses printed text
  std::string diagnostics;

  FuzzState() : context(makeRegistry(), MLIRContext::Threading::DISABLED) {
    context.loadAllAvailableDialects();
    context.getDiagEngine().registerHandler([this](Diagnostic &diag) {
      if (captureDiagnostics && diagnostics.size() < 16384) {
        llvm::raw_string_ostream os(diagnostics);
        os << diag.getLocation() << ": " << diag << "\n";
        for (const Diagnostic &note : diag.getNotes())
          os << "  note: " << note << "\n";
      }
      return success();
    });
  }

  static DialectRegistry makeRegistry() {
    DialectRegistry registry;
    registry.insert<mt::MtDialect, func::FuncDialect>();
    return registry;
  }
};

/// The context is created once and reused, except that it is replaced every kInputsPerContext inputs: everything
/// an input makes the context unique (identifiers, types, attributes) stays in it, and over millions of inputs
/// that growth would end in a false out-of-memory report. Uniquing never changes what an input does.
constexpr unsigned kInputsPerContext = 100000;
FuzzState *fuzzState = nullptr; // the last one is never destroyed: no teardown order issues at exit
unsigned inputsInContext = 0;

FuzzState &state() {
  if (!fuzzState)
    fuzzState = new FuzzState();
  return *fuzzState;
}

FuzzState &stateForNextInput() {
  if (fuzzState && ++inputsInContext >= kInputsPerContext) {
    delete fuzzState;
    fuzzState = nullptr;
    inputsInContext = 0;
  }
  return state();
}

std::string print(ModuleOp module, bool generic) {
  std::string text;
  llvm::raw_string_ostream os(text);
  OpPrintingFlags flags;
  if (generic)
    flags.printGenericOpForm();
  // The module was verified by the caller; printing must not depend on the verifier running again.
  flags.assumeVerified();
  module->print(os, flags);
  return text;
}

OwningOpRef<ModuleOp> parseAndVerify(const std::string &text, MLIRContext &context) {
  ParserConfig config(&context, /*verifyAfterParse=*/false);
  // parseSourceString does not require a NUL terminator, but MLIR's lexer reads one past the end of the
  // buffer to detect EOF, so always hand it a std::string (c_str() is terminated).
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config, "fuzz-input");
  if (!module || failed(verify(*module)))
    return nullptr;
  return module;
}

[[noreturn]] void roundTripFailure(const char *what, const std::string &first, const std::string &second) {
  llvm::errs() << "mt fuzzer: round trip failed: " << what << "\n--- diagnostics ---\n"
               << state().diagnostics << "--- printed text ---\n"
               << first << "\n";
  if (!second.empty())
    llvm::errs() << "--- printed again ---\n" << second << "\n";
  llvm::errs().flush();
  std::abort();
}

/// Upstream MLIR accepts `@""` as a symbol name (func.func, builtin.module, symbol references in attributes) and
/// prints it as `@<<INVALID EMPTY SYMBOL>>`, which does not parse. Not ours to fix, so such modules skip the round
/// trip, unless the empty name is an mt.param's: a parameter needs a name (the checkpoint's), so the mt verifier
/// must reject it.
bool hasUpstreamEmptySymbol(ModuleOp module, const std::string &text) {
  if (text.find("<<INVALID EMPTY SYMBOL>>") == std::string::npos)
    return false;
  bool emptyParamName = false;
  module->walk([&](mt::ParamOp param) { emptyParamName |= param.getSymName().empty(); });
  return !emptyParamName;
}

/// Prints `module`, parses and verifies the text and prints that again: the two texts must be identical.
void checkRoundTrip(ModuleOp module, bool generic) {
  MLIRContext &context = state().context;
  std::string text = print(module, generic);
  if (hasUpstreamEmptySymbol(module, text))
    return;
  state().diagnostics.clear();
  state().captureDiagnostics = true;
  OwningOpRef<ModuleOp> reparsed = parseAndVerify(text, context);
  state().captureDiagnostics = false;
  if (!reparsed)
    roundTripFailure(generic ? "the generic form of a verified module does not parse and verify"
                             : "the printed form of a verified module does not parse and verify",
                     text, "");
  std::string again = print(*reparsed, generic);
  if (again != text)
    roundTripFailure(generic ? "the generic form does not print back identically"
                             : "the printed form does not print back identically",
                     text, again);
}
} // namespace

/// How many inputs verified (and so went through the analysis and the round trips); mt-fuzz-replay reports it.
unsigned long long mtFuzzVerifiedInputs = 0;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzState &fuzz = stateForNextInput();
  std::string input(reinterpret_cast<const char *>(data), size);

  OwningOpRef<ModuleOp> module = parseAndVerify(input, fuzz.context);
  if (!module)
    return 0;
  ++mtFuzzVerifiedInputs;

  // The analysis behind --mt-report runs on any verified module; failing (64-bit overflow) is allowed.
  (void)mt::computeModelFigures(*module);

  // Printing must work, and what it prints must read back as the same module.
  module->print(llvm::nulls());
  checkRoundTrip(*module, /*generic=*/false);
  checkRoundTrip(*module, /*generic=*/true);
  return 0;
}
