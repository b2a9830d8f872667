//===- Plan.cpp - Writes the plan megatron-run executes --------------------===//

#include "passes/Passes.h"

#include "megatron/Plan/PlanBuilder.h"
#include "megatron/Support/AtomicFile.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::mt {
#define GEN_PASS_DEF_MTPLAN
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
namespace plan = megatron::plan;

namespace {

std::string mebibytes(int64_t bytes) { return llvm::formatv("{0:F2} MiB", bytes / 1048576.0).str(); }

struct MtPlanPass : mt::impl::MtPlanBase<MtPlanPass> {
  using MtPlanBase::MtPlanBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (output.empty())
      return emitError(UnknownLoc::get(context)) << "mt-plan: give the plan's path: --mt-plan=output=FILE";
    return success();
  }

  void runOnOperation() override {
    FailureOr<std::vector<plan::Plan>> built = mt::buildPlans(getOperation());
    if (failed(built))
      return signalPassFailure();
    if (std::string error = megatron::writeFileAtomically(output, plan::toJson(*built)); !error.empty()) {
      emitError(getOperation().getLoc(), "mt-plan: ") << error;
      return signalPassFailure();
    }
    for (const plan::Plan &p : *built)
      report(p, built->size() > 1);
    llvm::outs().flush();
    markAllAnalysesPreserved();
  }

  /// What the plan holds and the memory one rank of it needs.
  void report(const plan::Plan &p, bool pipelined) {
    auto arena = [&](plan::Arena a) { return p.arenaBytes[static_cast<int>(a)]; };
    llvm::outs() << "mt-plan: wrote " << output;
    if (pipelined)
      llvm::outs() << " stage " << p.pipeline.stage << " of " << p.pipeline.stages;
    llvm::outs() << " (" << p.buffers.size() << " buffers";
    for (const plan::Program &program : p.programs)
      llvm::outs() << ", " << program.name << ": " << program.steps.size() << " steps";
    llvm::outs() << ")\n";
    llvm::outs() << "  planned memory: " << mebibytes(p.totalBytes()) << " = parameters "
                 << mebibytes(arena(plan::Arena::Params)) << " + gradients " << mebibytes(arena(plan::Arena::Grads))
                 << " + optimizer state " << mebibytes(arena(plan::Arena::Optimizer)) << " + inputs "
                 << mebibytes(arena(plan::Arena::Inputs)) << " + activations "
                 << mebibytes(arena(plan::Arena::Activations));
    if (arena(plan::Arena::Weights))
      llvm::outs() << " + 16-bit weights " << mebibytes(arena(plan::Arena::Weights));
    if (pipelined)
      llvm::outs() << " + " << p.pipeline.stashSlots << " micro-batches in flight x "
                   << mebibytes(arena(plan::Arena::Stash)) << " stash";
    llvm::outs() << "\n";
    for (const plan::Program &program : p.programs)
      llvm::outs() << "  " << program.name << ": live activations peak at "
                   << mebibytes(program.peakActivationBytes) << "\n";
  }
};

} // namespace
