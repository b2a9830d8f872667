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

int64_t mlir::mt::tensorParallelSize(Operation *op) {
  auto module = dyn_cast<ModuleOp>(op);
  if (!module)
    module = op->getParentOfType<ModuleOp>();
  if (!module)
    return 1;
  auto size = module->getAttrOfType<IntegerAttr>(kTensorParallelAttr);
  return size ? size.getInt() : 1;
}

namespace {

/// The size of `group`; fails (naming the op) for an unknown group or a module that declares none.
FailureOr<int64_t> groupSize(Operation *op, StringRef group) {
  if (group != "tp" && group != "dp")
    return op->emitOpError() << "unknown group \"" << group
                             << "\"; the groups are: \"tp\" (tensor parallel), \"dp\" (data parallel)";
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
