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
