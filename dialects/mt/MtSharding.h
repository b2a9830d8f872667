//===- MtSharding.h - Layouts and the sharding rules' contract --*- C++ -*-===//
//
// How a value of the whole-model IR is laid out over the tensor-parallel group, and the interface through which
// each op's sharding rule (dialects/mt/MtSharding.cpp) asks the sharding pass (passes/Shard.cpp) for its operands
// in the layouts it needs and hands back its results. The rules know their op; the pass knows the collectives.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_DIALECTS_MT_MTSHARDING_H
#define MEGATRON_DIALECTS_MT_MTSHARDING_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Support/LogicalResult.h"

#include <string>

namespace mlir::mt {

/// (start, length) of a run of indices of one dimension.
using Span = std::pair<int64_t, int64_t>;

/// Where the values of a tensor are across the ranks of the tensor-parallel group.
struct Layout {
  enum class Kind {
    Replicated, ///< every rank holds the whole tensor
    Split,      ///< rank r holds its indices of dimension `dim`
    Partial,    ///< every rank holds a whole-shaped term; the tensor is their sum
  };
  Kind kind = Kind::Replicated;
  int64_t dim = -1;
  /// Split only: the spans of `dim` that each rank holds, in order; empty means r holds block r of equal blocks.
  /// A span held by several ranks is replicated among them, and its gradient there is a partial sum (each holder
  /// contributes its own consumers' part): the key/value heads of GQA with fewer groups than ranks.
  SmallVector<SmallVector<Span, 2>> spans;

  static Layout replicated() { return {}; }
  static Layout partial() { return {Kind::Partial, -1, {}}; }
  static Layout split(int64_t dim) { return {Kind::Split, dim, {}}; }
  static Layout split(int64_t dim, SmallVector<SmallVector<Span, 2>> spans);

  bool isReplicated() const { return kind == Kind::Replicated; }
  bool isSplit() const { return kind == Kind::Split; }
  bool isPartial() const { return kind == Kind::Partial; }
  bool isBlockSplit() const { return isSplit() && spans.empty(); }
  bool isBlockSplit(int64_t d) const { return isBlockSplit() && dim == d; }
  /// Whether some span is held by more than one rank.
  bool hasReplicatedSpans() const;

  /// `dim` of a split layout counted from the end: the last dimension of `rank` dimensions is -1.
  bool splitsLast(int64_t rank) const { return isSplit() && dim == rank - 1; }

  /// The spans of rank r for a dimension of global size `size` over `ranks` ranks (blocks made explicit).
  SmallVector<Span, 2> spansOf(int64_t rank, int64_t size, int64_t ranks) const;
  /// The local type of a tensor of `global` type.
  RankedTensorType localType(RankedTensorType global, int64_t ranks) const;

  bool operator==(const Layout &other) const;
  bool operator!=(const Layout &other) const { return !(*this == other); }
  /// "replicated", "partial", "split(1)", "split(0: [0+96, 384+96], ...)": for messages and lit tests.
  std::string str() const;
};

/// What an op's sharding rule gets from the sharding pass. Values passed in are the ORIGINAL (whole-model)
/// values; the rule gets back LOCAL values (one rank's program) in the layout it asked for.
class ShardingRewriter {
public:
  virtual ~ShardingRewriter() = default;

  /// Builds the local program; its insertion point is where the rule's op goes.
  virtual OpBuilder &builder() = 0;
  /// The size of the tensor-parallel group.
  virtual int64_t ranks() const = 0;
  /// Whether norm, dropout and residual regions are split along the sequence.
  virtual bool sequenceParallel() const = 0;

  /// The layout the pass has so far for an original value (for a parameter not yet used: replicated).
  virtual Layout layoutOf(Value original) = 0;
  /// The local value of `original` in `layout`, inserting collectives where it changes layout. With
  /// `partialGrad`, the consumer computes only a partial sum of this operand's gradient (the input of a
  /// column-parallel linear, a norm weight applied to a block of the sequence); the pass completes it: with a
  /// gradient all-reduce for an activation, after the last micro-batch for a parameter.
  virtual FailureOr<Value> get(Value original, const Layout &layout, bool partialGrad = false) = 0;
  /// Converts an already local value (e.g. an op's partial-sum output) from one layout to another.
  virtual FailureOr<Value> convert(Value local, RankedTensorType global, const Layout &from, const Layout &to,
                                   Location loc) = 0;
  /// Records the local value and layout that stand for `original`.
  virtual void set(Value original, Value local, const Layout &layout) = 0;

  /// Where activations live when nothing asks otherwise: split along the sequence (dimension 1 of a
  /// [batch, seq, hidden] tensor) under sequence parallelism, else replicated.
  Layout defaultLayout(Value original) const;
  /// The preferred layout of the single consumer of `original` for that operand, if it has one.
  std::optional<Layout> preferredByUser(Value original) const;
};

} // namespace mlir::mt

#endif // MEGATRON_DIALECTS_MT_MTSHARDING_H
