//===- FuseElementwise.cpp - Elementwise chains into one op ---------------===//
//
// --mt-fuse-elementwise: a dropout whose only use is a residual add becomes one mt.dropout_add, so that no kernel
// writes the dropout's output and none reads it back, and the memory planner has one activation less to place.
// Runs after autodiff: the fused op has no gradient rule, and the backward already holds the dropout's own
// (the same mask on the same rng_stream), so nothing there changes.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/mt/MtOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::mt {
#define GEN_PASS_DEF_MTFUSEELEMENTWISE
#include "passes/Passes.h.inc"
} // namespace mlir::mt

using namespace mlir;
using namespace mlir::mt;

namespace {

struct MtFuseElementwisePass : mt::impl::MtFuseElementwiseBase<MtFuseElementwisePass> {
  using MtFuseElementwiseBase::MtFuseElementwiseBase;

  void runOnOperation() override {
    SmallVector<std::pair<DropoutOp, AddOp>> pairs;
    getOperation().walk([&](DropoutOp dropout) {
      if (!dropout->hasOneUse())
        return;
      if (auto add = dyn_cast<AddOp>(*dropout->getUsers().begin()))
        if (add.getLhs() != add.getRhs()) // x + x would need the dropout's output twice
          pairs.push_back({dropout, add});
    });
    for (auto [dropout, add] : pairs) {
      Value residual = add.getLhs() == dropout.getResult() ? add.getRhs() : add.getLhs();
      OpBuilder builder(add);
      auto fused = builder.create<DropoutAddOp>(add.getLoc(), add.getType(), dropout.getX(), residual,
                                                dropout.getRateAttr(), dropout.getRngStreamAttr(),
                                                dropout.getShardDimAttr());
      add.getResult().replaceAllUsesWith(fused.getResult());
      add.erase();
      dropout.erase();
    }
  }
};

} // namespace
