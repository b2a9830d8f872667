// --mt-report prints what a model costs and leaves the IR unchanged.
// RUN: megatron-opt %s --mt-report | FileCheck %s
// RUN: megatron-opt %s --mt-report=format=json -o /dev/null | FileCheck %s --check-prefix=JSON
// RUN: not megatron-opt %s --mt-report=format=yaml 2>&1 | FileCheck %s --check-prefix=BADFORMAT

// A two-token, two-layer toy: a tied 16x8 embedding (counted once), one linear, a norm.
// Parameters: 16*8 + 8*8 + 8 + 8 = 208.
// Forward FLOPs per micro-batch: linear 2*(2*4)*8*8 = 1024, logits 2*(2*4)*8*16 = 2048, so 3072;
// two micro-batches per iteration: forward 6144, backward twice that.

// CHECK:      mt-report: gpt
// CHECK-NEXT:   parameters: 208 (208) in 4 tensors
// CHECK-NEXT:     embedding: 128
// CHECK-NEXT:     decoder: 80
// CHECK-NEXT:   FLOPs per iteration: 18432 (18.43 kFLOP) = forward 6144 + backward 12288
// CHECK-NEXT:     micro-batches per iteration: 2, forward FLOPs per micro-batch: 3072
// CHECK-NEXT:   weights: 832 bytes (832 B, f32)
// CHECK-NEXT:   gradients: 832 bytes (832 B, f32)
// CHECK-NEXT:   optimizer state: 1664 bytes (1.62 KiB, AdamW moments in f32)
// CHECK-NEXT:   model state: 3328 bytes (3.25 KiB)
// CHECK:      module attributes {mt.model = "gpt", mt.num_micro_batches = 2 : i64}
// CHECK:        mt.cross_entropy

// JSON:      "flops_per_iteration": "18432"
// JSON:      "parameters": 208
// JSON:      "parameters_by_component": {
// JSON-NEXT:   "decoder": 80,
// JSON-NEXT:   "embedding": 128
// JSON:      "weight_dtype": "f32"

// BADFORMAT: mt-report: unknown format 'yaml'; expected text or json

module attributes {mt.model = "gpt", mt.num_micro_batches = 2 : i64} {
  mt.param @embedding.word_embeddings.weight : tensor<16x8xf32> init <normal(0.02)>
  mt.param @decoder.layers.0.mlp.linear_fc2.weight : tensor<8x8xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @decoder.final_layernorm.weight : tensor<8xf32> init <ones>
  mt.param @decoder.final_layernorm.bias : tensor<8xf32> init <zeros>
  func.func @forward(%tokens: tensor<2x4xi32>, %labels: tensor<2x4xi32>, %mask: tensor<2x4xf32>) -> tensor<f32> {
    %wte = mt.param_ref @embedding.word_embeddings.weight : tensor<16x8xf32>
    %x = mt.embedding %tokens, %wte : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
    %w2 = mt.param_ref @decoder.layers.0.mlp.linear_fc2.weight : tensor<8x8xf32>
    %h = mt.linear %x, %w2 : tensor<2x4x8xf32>, tensor<8x8xf32> -> tensor<2x4x8xf32>
    %g = mt.param_ref @decoder.final_layernorm.weight : tensor<8xf32>
    %b = mt.param_ref @decoder.final_layernorm.bias : tensor<8xf32>
    %n = mt.layer_norm %h, %g, %b {epsilon = 1.0e-5 : f64} : tensor<2x4x8xf32>, tensor<8xf32>
    %logits = mt.linear %n, %wte : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
    %loss = mt.cross_entropy %logits, %labels, %mask : tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<2x4xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}
