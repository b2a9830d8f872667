// 16-bit weights: 2 bytes each, gradients still accumulate in f32, and AdamW keeps an f32 master copy beside
// its two f32 moments (12 bytes per parameter).
// RUN: megatron-opt %s --mt-report -o /dev/null | FileCheck %s

// CHECK: parameters: 100 (100) in 1 tensors
// CHECK: weights: 200 bytes (200 B, bf16)
// CHECK: gradients: 400 bytes (400 B, f32)
// CHECK: optimizer state: 1200 bytes (1.17 KiB, AdamW moments in f32 and f32 master weights)
mt.param @w : tensor<10x10xbf16> init <normal(0.02)>
