// An empty dimension is never a model size, and the FLOP and memory formulas divide by dimensions: the shape
// trait rejects it before anything counts FLOPs (this used to verify and then crash --mt-report).
// RUN: megatron-opt %s --mt-report -split-input-file -verify-diagnostics -o /dev/null

func.func @empty_linear(%x: tensor<2x0xf32>, %w: tensor<4x0xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'mt.linear' op needs non-empty tensors, but operand #0 has type 'tensor<2x0xf32>'}}
  %y = mt.linear %x, %w : tensor<2x0xf32>, tensor<4x0xf32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

func.func @no_heads(%q: tensor<2x16x0x8xf32>, %k: tensor<2x16x0x8xf32>) {
  // expected-error @+1 {{'mt.attention' op needs non-empty tensors, but operand #0 has type 'tensor<2x16x0x8xf32>'}}
  %o = mt.attention bidirectional %q, %k, %k {num_heads = 0 : i64, num_query_groups = 0 : i64, softmax_scale = 1.0 : f64}
      : tensor<2x16x0x8xf32>, tensor<2x16x0x8xf32>, tensor<2x16x0x8xf32>
  return
}
