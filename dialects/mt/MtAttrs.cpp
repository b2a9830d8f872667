//===- MtAttrs.cpp - Attributes of the mt dialect --------------------------===//

#include "dialects/mt/MtAttrs.h"
#include "dialects/mt/MtDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mt;

#include "dialects/mt/MtEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/mt/MtAttrs.cpp.inc"

void MtDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/mt/MtAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// InitAttr: `normal(0.02)`, `scaled_normal(0.02, layers = 12)`, `zeros`, `ones`
//===----------------------------------------------------------------------===//

Attribute InitAttr::parse(AsmParser &parser, Type) {
  StringRef keyword;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeyword(&keyword))
    return {};
  std::optional<InitKind> kind = symbolizeInitKind(keyword);
  if (!kind) {
    parser.emitError(loc, "unknown init '") << keyword << "'; expected normal, scaled_normal, zeros or ones";
    return {};
  }
  double std = 0.0;
  int64_t numLayers = 0;
  if (*kind == InitKind::Normal || *kind == InitKind::ScaledNormal) {
    if (parser.parseLParen() || parser.parseFloat(std))
      return {};
    if (*kind == InitKind::ScaledNormal &&
        (parser.parseComma() || parser.parseKeyword("layers") || parser.parseEqual() ||
         parser.parseInteger(numLayers)))
      return {};
    if (parser.parseRParen())
      return {};
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<InitAttr>(loc, parser.getContext(), *kind, llvm::APFloat(std), numLayers);
}

void InitAttr::print(AsmPrinter &printer) const {
  printer << "<" << stringifyInitKind(getKind());
  if (getKind() == InitKind::Normal || getKind() == InitKind::ScaledNormal) {
    // APFloat::toString gives the shortest decimal that reads back exactly: 0.02, not 2.000000e-02. A whole
    // number prints as "1", which the parser would take for an integer, so it gets its ".0" back.
    llvm::SmallString<16> std;
    getStd().toString(std);
    if (llvm::StringRef(std).find_first_of(".eEin") == llvm::StringRef::npos)
      std += ".0";
    printer << "(" << std;
    if (getKind() == InitKind::ScaledNormal)
      printer << ", layers = " << getNumLayers();
    printer << ")";
  }
  printer << ">";
}

LogicalResult InitAttr::verify(function_ref<InFlightDiagnostic()> emitError, InitKind kind, llvm::APFloat std,
                               int64_t numLayers) {
  bool random = kind == InitKind::Normal || kind == InitKind::ScaledNormal;
  double value = std.convertToDouble();
  if (random && !(value > 0.0 && std::isfinite(value)))
    return emitError() << stringifyInitKind(kind) << " init needs a positive, finite standard deviation, got "
                       << value;
  if (!random && !std.isZero())
    return emitError() << stringifyInitKind(kind) << " init takes no standard deviation";
  if (kind == InitKind::ScaledNormal && numLayers <= 0)
    return emitError() << "scaled_normal init needs layers > 0, got " << numLayers;
  if (kind != InitKind::ScaledNormal && numLayers != 0)
    return emitError() << "only scaled_normal init takes a layer count";
  return success();
}

double InitAttr::getEffectiveStd() const {
  switch (getKind()) {
  case InitKind::Normal:
    return getStd().convertToDouble();
  case InitKind::ScaledNormal:
    return getStd().convertToDouble() / std::sqrt(2.0 * static_cast<double>(getNumLayers()));
  case InitKind::Zeros:
  case InitKind::Ones:
    return 0.0;
  }
  llvm_unreachable("unknown InitKind");
}

//===----------------------------------------------------------------------===//
// ShardAttr: `<dim 0 of 2048: [0+512, 1024+512], [512+512, 1536+512]>`
//===----------------------------------------------------------------------===//

Attribute ShardAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  int64_t dim = 0, size = 0;
  if (parser.parseLess() || parser.parseKeyword("dim") || parser.parseInteger(dim) || parser.parseKeyword("of") ||
      parser.parseInteger(size) || parser.parseColon())
    return {};
  SmallVector<int64_t> spans;
  int64_t spansPerRank = -1;
  auto parseRank = [&]() -> ParseResult {
    int64_t count = 0;
    auto parseSpan = [&]() -> ParseResult {
      int64_t start = 0, length = 0;
      if (parser.parseInteger(start) || parser.parsePlus() || parser.parseInteger(length))
        return failure();
      spans.append({start, length});
      ++count;
      return success();
    };
    if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseSpan))
      return failure();
    if (spansPerRank >= 0 && count != spansPerRank)
      return parser.emitError(parser.getCurrentLocation(), "every rank needs ")
             << spansPerRank << " spans, got " << count;
    spansPerRank = count;
    return success();
  };
  if (parser.parseCommaSeparatedList(parseRank) || parser.parseGreater())
    return {};
  return parser.getChecked<ShardAttr>(loc, parser.getContext(), dim, size, spansPerRank, spans);
}

void ShardAttr::print(AsmPrinter &printer) const {
  printer << "<dim " << getDim() << " of " << getSize() << ": ";
  for (int64_t rank = 0; rank < getNumRanks(); ++rank) {
    printer << (rank ? ", [" : "[");
    for (auto [i, span] : llvm::enumerate(getRankSpans(rank)))
      printer << (i ? ", " : "") << span.first << "+" << span.second;
    printer << "]";
  }
  printer << ">";
}

LogicalResult ShardAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t dim, int64_t size,
                                int64_t spansPerRank, ArrayRef<int64_t> spans) {
  if (dim < 0 || size <= 0)
    return emitError() << "a shard needs a dimension >= 0 and a positive size, got dim " << dim << " of " << size;
  if (spansPerRank <= 0 || spans.empty() || spans.size() % (2 * spansPerRank) != 0)
    return emitError() << "a shard needs the same positive number of spans on every rank";
  int64_t ranks = spans.size() / (2 * spansPerRank), localSize = -1;
  for (int64_t rank = 0; rank < ranks; ++rank) {
    int64_t total = 0;
    for (int64_t i = 0; i < spansPerRank; ++i) {
      int64_t start = spans[2 * (rank * spansPerRank + i)], length = spans[2 * (rank * spansPerRank + i) + 1];
      if (start < 0 || length <= 0 || start > size - length)
        return emitError() << "span " << start << "+" << length << " of rank " << rank << " is outside [0, " << size
                           << ")";
      total += length;
    }
    if (localSize >= 0 && total != localSize)
      return emitError() << "rank " << rank << " holds " << total << " indices but rank 0 holds " << localSize;
    localSize = total;
  }
  return success();
}

SmallVector<std::pair<int64_t, int64_t>> ShardAttr::getRankSpans(int64_t rank) const {
  SmallVector<std::pair<int64_t, int64_t>> result;
  ArrayRef<int64_t> spans = getSpans().slice(2 * rank * getSpansPerRank(), 2 * getSpansPerRank());
  for (size_t i = 0; i < spans.size(); i += 2)
    result.push_back({spans[i], spans[i + 1]});
  return result;
}

int64_t ShardAttr::getLocalSize() const {
  int64_t total = 0;
  for (auto span : getRankSpans(0))
    total += span.second;
  return total;
}
