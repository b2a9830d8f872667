// RUN: megatron-opt %s | megatron-opt | FileCheck %s

// CHECK: mt.param @w : tensor<4x4xf32> init <normal(0.02)>
mt.param @w : tensor<4x4xf32> init <normal(0.02)>
