//===- MtParallelOps.cpp - Verifiers of the collectives and sharding ops ---===//
//
// A collective's shapes are checked against the size of its group, which the module declares
// (`mt.tensor_parallel`), so a sharded module that lost track of its layout fails to verify instead of running
// with the wrong block sizes.
//
//===----------------------------------------------------------------------===//

#include "dialects/mt/MtOps.h"
#include "dialects/mt/MtVerifyUtils.h"

#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::mt;
using namespace mlir::mt::verify;

/// A positive integer attribute of the module holding `op` (or of `op`, a module), 1 where it is absent.
static int64_t moduleCount(Operation *op, StringRef name) {
  auto module = dyn_cast<ModuleOp>(op);
  if (!module)
    module = op->getParentOfType<ModuleOp>();
  auto count = module ? module->getAttrOfType<IntegerAttr>(name) : IntegerAttr();
  return count ? count.getInt() : 1;
}

int64_t mlir::mt::tensorParallelSize(Operation *op) { return moduleCount(op, kTensorParallelAttr); }

int64_t mlir::mt::pipelineChunks(Operation *op) {
  return moduleCount(op, kPipelineParallelAttr) * moduleCount(op, kVirtualPipelineAttr);
}

int64_t mlir::mt::assignRngStreams(Block &body, int64_t first) {
  Builder b(body.getParentOp()->getContext());
  for (Operation &op : body) {
    auto dropout = dyn_cast<DropoutOp>(op);
    auto attention = dyn_cast<AttentionOp>(op);
    bool random = dropout || (attention && attention.getDropout().convertToDouble() > 0);
    if (random && !op.hasAttr("rng_stream"))
      op.setAttr("rng_stream", b.getI64IntegerAttr(first++));
  }
  return first;
}

namespace {

/// The size of `group`; fails (naming the op) for an unknown group or a module that declares none. The
/// "embedding" group (the pipeline stages holding a tied embedding, Megatron's embedding group) has 2 ranks, the
/// first and the last stage, or 1 when one stage holds every use.
FailureOr<int64_t> groupSize(Operation *op, StringRef group) {
  if (group != "tp" && group != "dp" && group != "embedding")
    return op->emitOpError() << "unknown group \"" << group
                             << "\"; the groups are: \"tp\" (tensor parallel), \"dp\" (data parallel), "
                                "\"embedding\" (the pipeline stages sharing a tied embedding)";
  if (group == "embedding") {
    if (pipelineChunks(op) < 2)
      return op->emitOpError() << "group \"embedding\" needs a module split into pipeline stages ('"
                               << kPipelineParallelAttr << "')";
    return 2;
  }
  StringRef attr = group == "tp" ? kTensorParallelAttr : kDataParallelAttr;
  auto module = op->getParentOfType<ModuleOp>();
  if (!module || !module->hasAttr(attr))
    return op->emitOpError() << "needs the module's '" << attr << "' to know the size of group \"" << group << "\"";
  return module->getAttrOfType<IntegerAttr>(attr).getInt();
}

/// `big` is `small` with dimension `dim` multiplied by the group's size: the shapes of a gather or a scatter.
LogicalResult verifyBlocks(Operation *op, Value small, Value big, int64_t dim, StringRef group, StringRef smallName,
                           StringRef bigName) {
  FailureOr<int64_t> size = groupSize(op, group);
  if (failed(size))
    return failure();
  if (failed(expectSameElementType(op, {{small, smallName}, {big, bigName}})))
    return failure();
  int64_t rank = tensorOf(small).getRank();
  if (dim < 0 || dim >= rank)
    return op->emitOpError() << "dim " << dim << " is outside the " << rank << " dimensions of " << smallName;
  SmallVector<int64_t> expected(shapeOf(small));
  expected[dim] *= *size;
  return expectShape(op, big, expected, bigName);
}

} // namespace

LogicalResult AllReduceOp::verify() { return groupSize(*this, getGroup()); }
LogicalResult CopyToGroupOp::verify() { return groupSize(*this, getGroup()); }

LogicalResult AllGatherOp::verify() {
  return verifyBlocks(*this, getX(), getResult(), getDim(), getGroup(), "x", "result");
}
LogicalResult ReduceScatterOp::verify() {
  return verifyBlocks(*this, getResult(), getX(), getDim(), getGroup(), "result", "x");
}
LogicalResult ShardSliceOp::verify() {
  return verifyBlocks(*this, getResult(), getX(), getDim(), getGroup(), "result", "x");
}

LogicalResult AddBiasOp::verify() {
  if (failed(expectSameElementType(*this, {{getX(), "x"}, {getBias(), "bias"}})))
    return failure();
  return expectShape(*this, getBias(), {shapeOf(getX()).back()}, "bias");
}

LogicalResult AllReduceGradsOp::verify() {
  FailureOr<int64_t> size = groupSize(*this, getGroup());
  if (failed(size))
    return failure();
  if (getParams().empty())
    return emitOpError() << "needs at least one parameter";
  if (std::optional<uint64_t> block = getGroupSize()) {
    int64_t k = static_cast<int64_t>(*block);
    if (k < 2 || *size % k != 0)
      return emitOpError() << "group_size " << k << " must be at least 2 and divide the group's " << *size
                           << " ranks";
  }
  if (std::optional<ArrayRef<int64_t>> rows = getRows())
    if (rows->size() != 2 || (*rows)[0] < 0 || (*rows)[1] <= 0)
      return emitOpError() << "rows must be [offset, count] with offset >= 0 and count > 0";
  return success();
}

LogicalResult AllReduceGradsOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  for (Attribute attr : getParams()) {
    auto name = cast<SymbolRefAttr>(attr);
    auto param = dyn_cast_or_null<ParamOp>(symbolTable.lookupNearestSymbolFrom(*this, name));
    if (!param)
      return emitOpError() << "names " << name << ", which is not declared by an mt.param";
    if (std::optional<ArrayRef<int64_t>> rows = getRows(); rows && rows->size() == 2) {
      int64_t available = param.getTensorType().getShape()[0];
      if ((*rows)[0] + (*rows)[1] > available)
        return emitOpError() << "rows [" << (*rows)[0] << ", " << (*rows)[0] + (*rows)[1] << ") of " << name
                             << " are outside its " << available << " rows";
    }
  }
  return success();
}

/// The other chunk of a pipeline message: one of the module's chunks.
static LogicalResult verifyPeerChunk(Operation *op, int64_t chunk, int64_t index) {
  int64_t chunks = pipelineChunks(op);
  if (chunks < 2)
    return op->emitOpError() << "needs a module split into pipeline chunks ('" << kPipelineParallelAttr << "')";
  if (chunk < 0 || chunk >= chunks)
    return op->emitOpError() << "chunk " << chunk << " is outside the module's " << chunks << " pipeline chunks";
  if (index < 0)
    return op->emitOpError() << "index must be non-negative, got " << index;
  return success();
}

LogicalResult SendOp::verify() { return verifyPeerChunk(*this, getChunk(), getIndex()); }
LogicalResult RecvOp::verify() { return verifyPeerChunk(*this, getChunk(), getIndex()); }

LogicalResult BackwardStartOp::verify() {
  // Reported once, by the second.
  for (Operation *before = (*this)->getPrevNode(); before; before = before->getPrevNode())
    if (isa<BackwardStartOp>(before))
      return emitOpError("appears twice in one block; a training step has one forward and one backward half");
  return success();
}
