//===- RandomFill.h - Random parameters and inputs for the CUDA tests' engines ---*- C++ -*-===//

#ifndef MEGATRON_TEST_UNIT_CUDA_RANDOMFILL_H
#define MEGATRON_TEST_UNIT_CUDA_RANDOMFILL_H

#include "runtime/engine/Engine.h"

#include <cstdint>

namespace megatron::test {

/// Parameters drawn around their init (biases and the norms' weights made non-trivial, so that their terms
/// count), then the inputs as fillInputs does, from one stream seeded with `seed`.
void fillRandomly(runtime::Engine &engine, uint64_t seed);

/// Ids and labels below what they index, padding masks of ones with a padded tail per sequence, and a loss mask
/// with zeros (so that masking counts).
void fillInputs(runtime::Engine &engine, uint64_t seed);

} // namespace megatron::test

#endif // MEGATRON_TEST_UNIT_CUDA_RANDOMFILL_H
