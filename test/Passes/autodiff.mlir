// mt-autodiff adds @train_step: the forward, the loss seed, each op's backward in reverse order, and one
// mt.grad_accumulate per parameter. @forward stays for evaluation.
// RUN: megatron-opt %s --mt-autodiff -split-input-file | FileCheck %s

// A linear with bias under a masked loss, two micro-batches per iteration.
// CHECK-LABEL: module attributes {mt.num_micro_batches = 2 : i64}
// CHECK:       func.func @forward
// CHECK:       func.func @train_step(%[[X:[^:]*]]: tensor<2x8xf32>, %[[LABELS:[^:]*]]: tensor<2xi32>, %[[MASK:[^:]*]]: tensor<2xf32>) -> tensor<f32>
// The forward, unchanged:
// CHECK:         %[[W:.*]] = mt.param_ref @w
// CHECK:         %[[B:.*]] = mt.param_ref @b
// CHECK:         %[[LOGITS:.*]] = mt.linear %[[X]], %[[W]], %[[B]]
// CHECK:         %[[LOSS:.*]] = mt.cross_entropy %[[LOGITS]], %[[LABELS]], %[[MASK]]
// The seed is 1 / micro-batches: an iteration's loss is the mean over its micro-batches. It is marked loss_seed:
// fp16 training multiplies it by the loss scale.
// CHECK-NEXT:    %[[SEED:.*]] = mt.fill {loss_seed, value = 5.000000e-01 : f64} : tensor<f32>
// CHECK-NEXT:    %[[DLOGITS:.*]] = mt.cross_entropy_grad %[[SEED]], %[[LOGITS]], %[[LABELS]], %[[MASK]]
// The linear's three gradients are separate ops; dx is not needed (x is an input) but is built all the same.
// CHECK-NEXT:    mt.linear_grad_input %[[DLOGITS]], %[[W]]
// CHECK-NEXT:    %[[DW:.*]] = mt.linear_grad_weight %[[DLOGITS]], %[[X]] : tensor<2x4xf32>, tensor<2x8xf32> -> tensor<4x8xf32>
// CHECK-NEXT:    %[[DB:.*]] = mt.sum_rows %[[DLOGITS]] : tensor<2x4xf32> -> tensor<4xf32>
// CHECK-NEXT:    mt.grad_accumulate @w, %[[DW]] : tensor<4x8xf32>
// CHECK-NEXT:    mt.grad_accumulate @b, %[[DB]] : tensor<4xf32>
// CHECK-NEXT:    return %[[LOSS]] : tensor<f32>
module attributes {mt.num_micro_batches = 2 : i64} {
  mt.param @w : tensor<4x8xf32> init <normal(0.02)>
  mt.param @b : tensor<4xf32> init <zeros>
  func.func @forward(%x: tensor<2x8xf32>, %labels: tensor<2xi32>, %mask: tensor<2xf32>) -> tensor<f32> {
    %w = mt.param_ref @w : tensor<4x8xf32>
    %b = mt.param_ref @b : tensor<4xf32>
    %logits = mt.linear %x, %w, %b : tensor<2x8xf32>, tensor<4x8xf32>, tensor<4xf32> -> tensor<2x4xf32>
    %loss = mt.cross_entropy %logits, %labels, %mask : tensor<2x4xf32>, tensor<2xi32>, tensor<2xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// A value used twice (a residual) gets the sum of its gradients; a tied parameter referenced twice gets one
// mt.grad_accumulate with the sum; dropout is numbered and its backward is the same op on the same stream.
// CHECK-LABEL: func.func @train_step(%arg0: tensor<2x4xi32>
// CHECK:         %[[TABLE:.*]] = mt.param_ref @table
// CHECK:         %[[H:.*]] = mt.embedding %{{.*}}, %[[TABLE]]
// CHECK:         %[[D:.*]] = mt.dropout %[[H]] {rate = 1.000000e-01 : f64, rng_stream = 0 : i64}
// CHECK:         %[[R:.*]] = mt.add %[[H]], %[[D]]
// CHECK:         %[[TABLE2:.*]] = mt.param_ref @table
// CHECK:         %[[LOGITS:.*]] = mt.linear %[[R]], %[[TABLE2]]
// CHECK:         %[[SEED:.*]] = mt.fill {loss_seed, value = 1.000000e+00 : f64}
// CHECK:         %[[DLOGITS:.*]] = mt.cross_entropy_grad %[[SEED]], %[[LOGITS]]
// CHECK:         %[[DR:.*]] = mt.linear_grad_input %[[DLOGITS]], %[[TABLE2]]
// CHECK:         %[[DOUT:.*]] = mt.linear_grad_weight %[[DLOGITS]], %[[R]]
// CHECK:         %[[DD:.*]] = mt.dropout %[[DR]] {rate = 1.000000e-01 : f64, rng_stream = 0 : i64}
// CHECK:         %[[DH:.*]] = mt.add %[[DR]], %[[DD]]
// CHECK:         %[[DIN:.*]] = mt.embedding_grad %{{.*}}, %[[DH]]
// CHECK:         %[[DTABLE:.*]] = mt.add %[[DOUT]], %[[DIN]]
// CHECK:         mt.grad_accumulate @table, %[[DTABLE]] : tensor<16x8xf32>
// CHECK-NOT:     mt.grad_accumulate
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

// Attention: one attention_grad recomputes the probabilities from the forward's inputs and output; the split of
// a fused QKV projection is undone by merge_qkv; RoPE's backward rotates back.
// CHECK-LABEL: func.func @train_step(%arg0: tensor<1x4x16xf32>
// CHECK:         %[[Q:.*]], %[[K:.*]], %[[V:.*]] = mt.split_qkv
// CHECK:         %[[QR:.*]] = mt.rope %[[Q]]
// CHECK:         %[[KR:.*]] = mt.rope %[[K]]
// CHECK:         %[[O:.*]] = mt.attention  causal %[[QR]], %[[KR]], %[[V]]
// CHECK:         %[[DQR:.*]], %[[DKR:.*]], %[[DV:.*]] = mt.attention_grad  causal %{{.*}}, %[[O]], %[[QR]], %[[KR]], %[[V]]
// CHECK-DAG:     %[[DK:.*]] = mt.rope_grad %[[DKR]]
// CHECK-DAG:     %[[DQ:.*]] = mt.rope_grad %[[DQR]]
// CHECK:         mt.merge_qkv %[[DQ]], %[[DK]], %[[DV]] : tensor<1x4x4x2xf32>, tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32> -> tensor<1x4x16xf32>
func.func @forward(%x: tensor<1x4x16xf32>, %labels: tensor<1x4xi32>) -> tensor<f32> {
  %q, %k, %v = mt.split_qkv %x {num_heads = 4 : i64, num_query_groups = 2 : i64} : tensor<1x4x16xf32> -> tensor<1x4x4x2xf32>, tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32>
  %qr = mt.rope %q {base = 10000.0 : f64, rotary_dim = 2 : i64} : tensor<1x4x4x2xf32>
  %kr = mt.rope %k {base = 10000.0 : f64, rotary_dim = 2 : i64} : tensor<1x4x2x2xf32>
  %o = mt.attention causal %qr, %kr, %v {num_heads = 4 : i64, num_query_groups = 2 : i64, softmax_scale = 0.7 : f64} : tensor<1x4x4x2xf32>, tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32>
  %m = mt.merge_heads %o : tensor<1x4x4x2xf32> -> tensor<1x4x8xf32>
  %loss = mt.cross_entropy %m, %labels : tensor<1x4x8xf32>, tensor<1x4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
