// A model megatron-model --bf16 wrote keeps f32 parameters: they are the master weights, and the plan computes
// with persistent bf16 copies of them (docs/plan.md, "The 16-bit weights"). The report counts them as Megatron
// does, 18 bytes per parameter: the bf16 weights, f32 gradients, and f32 masters beside the two f32 moments. The
// same figures as a model whose parameters are bf16 (report-mixed-precision.mlir).
// RUN: megatron-opt %s --mt-report -o /dev/null | FileCheck %s

// CHECK: parameters: 100 (100) in 1 tensors
// CHECK: weights: 200 bytes (200 B, bf16)
// CHECK: gradients: 400 bytes (400 B, f32)
// CHECK: optimizer state: 1200 bytes (1.17 KiB, AdamW moments in f32 and f32 master weights)
// CHECK: model state: 1800 bytes (1.76 KiB)
module attributes {mt.precision = "bf16"} {
  mt.param @w : tensor<10x10xf32> init <normal(0.02)>
}
