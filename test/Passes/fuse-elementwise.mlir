// mt-fuse-elementwise: after autodiff, a dropout whose only use is an add becomes one mt.dropout_add, in the
// forward (the residual connection) and in the backward (the residual's gradient plus the dropout's backward).
// The dropout's attributes (rate, rng_stream) move to the fused op, so the mask is the same. A linear feeding a
// tanh GeLU becomes mt.linear_gelu, and the input gradient of the linear after it, feeding that GeLU's gradient,
// mt.linear_grad_input_gelu reading the fused op's pre-activation (cuBLASLt's GELU_AUX_BIAS and DGELU epilogues).
// The second RUN line parses the printed ops back.
// RUN: megatron-opt %s --mt-autodiff --mt-fuse-elementwise -split-input-file | FileCheck %s
// RUN: megatron-opt %s --mt-autodiff --mt-fuse-elementwise -split-input-file | megatron-opt -split-input-file | FileCheck %s

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

// -----

// A GPT MLP: fc1 (with a bias) and its tanh GeLU become one mt.linear_gelu in both functions; @forward (validation)
// leaves its pre-activation unused. In the backward, fc2's input gradient and the GeLU's gradient become one
// mt.linear_grad_input_gelu that reads pre, and what read the GeLU's gradient (fc1's input and weight gradients,
// the bias gradient) reads the fused op's result.
// CHECK-LABEL: func.func @forward
// CHECK:         %[[PRE:.*]], %[[ACT:.*]] = mt.linear_gelu %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x4x8xf32>, tensor<32x8xf32>, tensor<32xf32> -> tensor<2x4x32xf32>
// CHECK-NOT:     mt.gelu
// CHECK:         mt.linear %[[ACT]], %{{.*}} : tensor<2x4x32xf32>, tensor<8x32xf32> -> tensor<2x4x8xf32>
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[W1:.*]] = mt.param_ref @w1
// CHECK:         %[[PRE:.*]], %[[ACT:.*]] = mt.linear_gelu %[[H:.*]], %[[W1]], %{{.*}} : tensor<2x4x8xf32>, tensor<32x8xf32>, tensor<32xf32> -> tensor<2x4x32xf32>
// CHECK:         %[[W2:.*]] = mt.param_ref @w2
// CHECK:         %[[V:.*]] = mt.linear %[[ACT]], %[[W2]]
// CHECK:         %[[DV:.*]] = mt.linear_grad_input %{{.*}}, %{{.*}} : tensor<2x4x16xf32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
// CHECK:         mt.linear_grad_weight %[[DV]], %[[ACT]]
// CHECK:         %[[DU:.*]] = mt.linear_grad_input_gelu %[[DV]], %[[W2]], %[[PRE]] : tensor<2x4x8xf32>, tensor<8x32xf32> -> tensor<2x4x32xf32>
// CHECK-NEXT:    mt.linear_grad_input %[[DU]], %[[W1]]
// CHECK-NEXT:    mt.linear_grad_weight %[[DU]], %[[H]]
// CHECK-NEXT:    mt.sum_rows %[[DU]]
// CHECK-NOT:     mt.gelu
// CHECK:         return
mt.param @table : tensor<16x8xf32> init <normal(0.02)>
mt.param @w1 : tensor<32x8xf32> init <normal(0.02)>
mt.param @b1 : tensor<32xf32> init <zeros>
mt.param @w2 : tensor<8x32xf32> init <normal(0.02)>
func.func @forward(%tokens: tensor<2x4xi32>, %labels: tensor<2x4xi32>) -> tensor<f32> {
  %table = mt.param_ref @table : tensor<16x8xf32>
  %h = mt.embedding %tokens, %table : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  %w1 = mt.param_ref @w1 : tensor<32x8xf32>
  %b1 = mt.param_ref @b1 : tensor<32xf32>
  %u = mt.linear %h, %w1, %b1 : tensor<2x4x8xf32>, tensor<32x8xf32>, tensor<32xf32> -> tensor<2x4x32xf32>
  %a = mt.gelu %u : tensor<2x4x32xf32>
  %w2 = mt.param_ref @w2 : tensor<8x32xf32>
  %v = mt.linear %a, %w2 : tensor<2x4x32xf32>, tensor<8x32xf32> -> tensor<2x4x8xf32>
  %table2 = mt.param_ref @table : tensor<16x8xf32>
  %logits = mt.linear %v, %table2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %loss = mt.cross_entropy %logits, %labels : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Without a bias, in bf16 (the 16-bit compute of mixed precision, between casts): the same two fusions.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[PRE:.*]], %[[ACT:.*]] = mt.linear_gelu %{{.*}}, %{{.*}} : tensor<2x4x8xbf16>, tensor<16x8xbf16> -> tensor<2x4x16xbf16>
// CHECK:         mt.linear_grad_input_gelu %{{.*}}, %{{.*}}, %[[PRE]] : tensor<2x4x8xbf16>, tensor<8x16xbf16> -> tensor<2x4x16xbf16>
// CHECK-NOT:     mt.gelu
// CHECK:         return
mt.param @table : tensor<16x8xf32> init <normal(0.02)>
mt.param @w1 : tensor<16x8xbf16> init <normal(0.02)>
mt.param @w2 : tensor<8x16xbf16> init <normal(0.02)>
func.func @forward(%tokens: tensor<2x4xi32>, %labels: tensor<2x4xi32>) -> tensor<f32> {
  %table = mt.param_ref @table : tensor<16x8xf32>
  %h = mt.embedding %tokens, %table : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  %x = mt.cast %h : tensor<2x4x8xf32> to tensor<2x4x8xbf16>
  %w1 = mt.param_ref @w1 : tensor<16x8xbf16>
  %u = mt.linear %x, %w1 : tensor<2x4x8xbf16>, tensor<16x8xbf16> -> tensor<2x4x16xbf16>
  %a = mt.gelu %u : tensor<2x4x16xbf16>
  %w2 = mt.param_ref @w2 : tensor<8x16xbf16>
  %v = mt.linear %a, %w2 : tensor<2x4x16xbf16>, tensor<8x16xbf16> -> tensor<2x4x8xbf16>
  %y = mt.cast %v : tensor<2x4x8xbf16> to tensor<2x4x8xf32>
  %table2 = mt.param_ref @table : tensor<16x8xf32>
  %logits = mt.linear %y, %table2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %loss = mt.cross_entropy %logits, %labels : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// What stays unfused. (1) The exact (erf) GeLU: cuBLASLt's epilogue computes the tanh form. (2) A pre-activation
// with another use (a residual add around the GeLU) is stored by a linear of its own; in the backward the add's
// gradient reaches both the GeLU's gradient and the linear's, so that input gradient stays too. (3) An activation
// with two uses: the forward fuses, but its gradient is a sum, so fc2's input gradient feeds the add, not the
// GeLU's gradient. (4) A GeLU 12 wide: cuBLASLt needs the aux matrix's leading dimension divisible by 8.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[U1:.*]] = mt.linear %{{.*}}, %{{.*}} : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
// CHECK-NEXT:    mt.gelu %[[U1]] {approximation = #mt<gelu_approximation none>}
// CHECK:         %[[U2:.*]] = mt.linear %{{.*}}, %{{.*}} : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
// CHECK-NEXT:    %[[A2:.*]] = mt.gelu %[[U2]] : tensor<2x4x16xf32>
// CHECK-NEXT:    mt.add %[[U2]], %[[A2]]
// CHECK:         %[[P3:.*]], %[[A3:.*]] = mt.linear_gelu
// CHECK:         mt.add %{{.*}}, %[[A3]]
// CHECK:         %[[U4:.*]] = mt.linear %{{.*}}, %{{.*}} : tensor<2x4x8xf32>, tensor<12x8xf32> -> tensor<2x4x12xf32>
// CHECK-NEXT:    mt.gelu %[[U4]] : tensor<2x4x12xf32>
// CHECK:         mt.gelu_grad %{{.*}}, %[[U4]] : tensor<2x4x12xf32>
// CHECK:         %[[D3:.*]] = mt.add
// CHECK-NEXT:    mt.gelu_grad %[[D3]], %[[P3]] : tensor<2x4x16xf32>
// CHECK:         mt.gelu_grad %{{.*}}, %[[U2]] : tensor<2x4x16xf32>
// CHECK:         mt.gelu_grad %{{.*}}, %[[U1]] {approximation = #mt<gelu_approximation none>}
// CHECK-NOT:     mt.linear_grad_input_gelu
// CHECK:         return
mt.param @table : tensor<16x8xf32> init <normal(0.02)>
mt.param @w1 : tensor<16x8xf32> init <normal(0.02)>
mt.param @w1o : tensor<8x16xf32> init <normal(0.02)>
mt.param @w2 : tensor<16x8xf32> init <normal(0.02)>
mt.param @w2o : tensor<8x16xf32> init <normal(0.02)>
mt.param @w3 : tensor<16x8xf32> init <normal(0.02)>
mt.param @w3o : tensor<16x16xf32> init <normal(0.02)>
mt.param @w3p : tensor<8x16xf32> init <normal(0.02)>
mt.param @w4 : tensor<12x8xf32> init <normal(0.02)>
mt.param @w4o : tensor<8x12xf32> init <normal(0.02)>
func.func @forward(%tokens: tensor<2x4xi32>, %labels: tensor<2x4xi32>) -> tensor<f32> {
  %table = mt.param_ref @table : tensor<16x8xf32>
  %x = mt.embedding %tokens, %table : tensor<2x4xi32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  %w1 = mt.param_ref @w1 : tensor<16x8xf32>
  %u1 = mt.linear %x, %w1 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %a1 = mt.gelu %u1 {approximation = #mt<gelu_approximation none>} : tensor<2x4x16xf32>
  %w1o = mt.param_ref @w1o : tensor<8x16xf32>
  %v1 = mt.linear %a1, %w1o : tensor<2x4x16xf32>, tensor<8x16xf32> -> tensor<2x4x8xf32>
  %w2 = mt.param_ref @w2 : tensor<16x8xf32>
  %u2 = mt.linear %x, %w2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %a2 = mt.gelu %u2 : tensor<2x4x16xf32>
  %r2 = mt.add %u2, %a2 : tensor<2x4x16xf32>
  %w2o = mt.param_ref @w2o : tensor<8x16xf32>
  %v2 = mt.linear %r2, %w2o : tensor<2x4x16xf32>, tensor<8x16xf32> -> tensor<2x4x8xf32>
  %w3 = mt.param_ref @w3 : tensor<16x8xf32>
  %u3 = mt.linear %x, %w3 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %a3 = mt.gelu %u3 : tensor<2x4x16xf32>
  %w3o = mt.param_ref @w3o : tensor<16x16xf32>
  %v3 = mt.linear %a3, %w3o : tensor<2x4x16xf32>, tensor<16x16xf32> -> tensor<2x4x16xf32>
  %s3 = mt.add %v3, %a3 : tensor<2x4x16xf32>
  %w3p = mt.param_ref @w3p : tensor<8x16xf32>
  %y3 = mt.linear %s3, %w3p : tensor<2x4x16xf32>, tensor<8x16xf32> -> tensor<2x4x8xf32>
  %w4 = mt.param_ref @w4 : tensor<12x8xf32>
  %u4 = mt.linear %x, %w4 : tensor<2x4x8xf32>, tensor<12x8xf32> -> tensor<2x4x12xf32>
  %a4 = mt.gelu %u4 : tensor<2x4x12xf32>
  %w4o = mt.param_ref @w4o : tensor<8x12xf32>
  %v4 = mt.linear %a4, %w4o : tensor<2x4x12xf32>, tensor<8x12xf32> -> tensor<2x4x8xf32>
  %s12 = mt.add %v1, %v2 : tensor<2x4x8xf32>
  %s34 = mt.add %y3, %v4 : tensor<2x4x8xf32>
  %s = mt.add %s12, %s34 : tensor<2x4x8xf32>
  %table2 = mt.param_ref @table : tensor<16x8xf32>
  %logits = mt.linear %s, %table2 : tensor<2x4x8xf32>, tensor<16x8xf32> -> tensor<2x4x16xf32>
  %loss = mt.cross_entropy %logits, %labels : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
