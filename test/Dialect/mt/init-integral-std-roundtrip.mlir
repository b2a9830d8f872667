// A whole-number standard deviation prints with its decimal point, so that the printed form reads back
// (APFloat's shortest form of 1.0 is "1", which the parser would take for an integer).
// RUN: megatron-opt %s | megatron-opt | FileCheck %s

// CHECK: mt.param @w : tensor<4x4xf32> init <normal(1.0)>
mt.param @w : tensor<4x4xf32> init <normal(1.0)>
// CHECK: mt.param @v : tensor<4x4xf32> init <scaled_normal(2.0, layers = 12)>
mt.param @v : tensor<4x4xf32> init <scaled_normal(2.0, layers = 12)>
// CHECK: mt.param @u : tensor<4x4xf32> init <normal(1.5)>
mt.param @u : tensor<4x4xf32> init <normal(1.5)>
