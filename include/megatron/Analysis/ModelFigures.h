//===- ModelFigures.h - What a model costs: parameters, FLOPs, bytes -*- C++ -*-===//
//
// Plain figures, with no MLIR types, so that the runtime and reports can carry them without MLIR headers.
//
//===----------------------------------------------------------------------===//

#ifndef MEGATRON_ANALYSIS_MODELFIGURES_H
#define MEGATRON_ANALYSIS_MODELFIGURES_H

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace megatron {

struct ModelFigures {
  /// Distinct trainable parameters; a tied parameter counts once.
  uint64_t parameterCount = 0;
  uint64_t parameterTensors = 0;
  /// Parameters by the first component of their name ("embedding", "decoder", ...), in declaration order.
  std::vector<std::pair<std::string, uint64_t>> parametersByComponent;

  /// Forward FLOPs of one micro-batch, summed over every op that multiplies matrices (Megatron-LM's count).
  uint64_t forwardFlopsPerMicroBatch = 0;
  int64_t microBatchesPerIteration = 1;
  /// Megatron-LM's convention: the backward pass costs twice the forward.
  uint64_t forwardFlopsPerIteration = 0;
  uint64_t backwardFlopsPerIteration = 0;
  uint64_t flopsPerIteration = 0;

  /// Bytes of model state on one rank holding the whole model: weights in their own dtype (in the module's
  /// mt.precision, bf16 or fp16, when f32 parameters are the master weights of a mixed-precision model), gradients
  /// accumulated in f32, AdamW's two moments in f32, plus an f32 master copy of weights stored in 16 bits.
  std::string weightDtype;
  uint64_t weightBytes = 0;
  uint64_t gradientBytes = 0;
  uint64_t optimizerStateBytes = 0;
  uint64_t modelStateBytes() const { return weightBytes + gradientBytes + optimizerStateBytes; }
};

} // namespace megatron

#endif // MEGATRON_ANALYSIS_MODELFIGURES_H
