// mt-fuse-elementwise: after autodiff, a dropout whose only use is an add becomes one mt.dropout_add, in the
// forward (the residual connection) and in the backward (the residual's gradient plus the dropout's backward).
// The dropout's attributes (rate, rng_stream) move to the fused op, so the mask is the same.
// RUN: megatron-opt %s --mt-autodiff --mt-fuse-elementwise -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @train_step
// CHECK:         %[[H:.*]] = mt.embedding
// CHECK-NOT:     mt.dropout %
// CHECK:         %[[R:.*]] = mt.dropout_add %[[H]], %[[H]] {rate = 1.000000e-01 : f64, rng_stream = 0 : i64} : tensor<2x4x8xf32>
// CHECK:         mt.linear %[[R]]
// CHECK:         %[[DR:.*]] = mt.linear_grad_input
// CHECK:         %[[DH:.*]] = mt.dropout_add %[[DR]], %[[DR]] {rate = 1.000000e-01 : f64, rng_stream = 0 : i64}
// CHECK:         mt.embedding_grad %{{.*}}, %[[DH]]
// CHECK-NOT:     mt.dropout %
// CHECK:         return
mt.param @table : tensor<16x8xf32> init <normal(0.02)>
func.func @forward(%tokens: tensor<2x4xi32>, %labels: tensor<2x4xi32>) -> tensor<f32> {
  %table = mt.param_ref @table : tensor<16x8xf32>
  %h = mt.embedding %tokens, %table : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  %d = mt.dropout %h {rate = 0.1 : f64} : tensor<2x4x8xf32>
  %r = mt.add %h, %d : tensor<2x4x8xf32>
  %table2 = mt.param_ref @table : tensor<16x8xf32>
  %logits = mt.linear %r, %table2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %loss = mt.cross_entropy %logits, %labels : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// A dropout whose output is also used elsewhere must still be stored: it stays, and so does its add. An add of
// the dropout to itself would need the dropped value twice: it stays too.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[D:.*]] = mt.dropout %{{.*}} {rate = 1.000000e-01 : f64, rng_stream = 0 : i64}
// CHECK:         mt.add %{{.*}}, %[[D]]
// CHECK:         mt.gelu %[[D]]
// CHECK:         %[[E:.*]] = mt.dropout %{{.*}} {rate = 2.000000e-01 : f64, rng_stream = 1 : i64}
// CHECK:         mt.add %[[E]], %[[E]]
mt.param @table : tensor<16x8xf32> init <normal(0.02)>
func.func @forward(%tokens: tensor<2x4xi32>, %labels: tensor<2x4xi32>) -> tensor<f32> {
  %table = mt.param_ref @table : tensor<16x8xf32>
  %h = mt.embedding %tokens, %table : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  %d = mt.dropout %h {rate = 0.1 : f64} : tensor<2x4x8xf32>
  %r = mt.add %h, %d : tensor<2x4x8xf32>
  %g = mt.gelu %d : tensor<2x4x8xf32>
  %e = mt.dropout %g {rate = 0.2 : f64} : tensor<2x4x8xf32>
  %s = mt.add %e, %e : tensor<2x4x8xf32>
  %t = mt.add %r, %s : tensor<2x4x8xf32>
  %table2 = mt.param_ref @table : tensor<16x8xf32>
  %logits = mt.linear %t, %table2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %loss = mt.cross_entropy %logits, %labels : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
