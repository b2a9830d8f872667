// Errors of the attention ops (dialects/mt/MtOps.cpp: SplitQkvOp, SplitKvOp, verifyHeadView for SplitHeadsOp and
// MergeHeadsOp, AttentionOp). Shapes follow roundtrip.mlir: batch 2, seq 16, 8 heads in 2 groups, head_dim 8.
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// mt.split_qkv
//===----------------------------------------------------------------------===//

func.func @split_qkv_rank(%x: tensor<2x16x12x8xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op x must have rank 3 ([batch, seq, (heads + 2*groups) * head_dim]), got 'tensor<2x16x12x8xf32>'}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x12x8xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_qkv_zero_heads(%x: tensor<2x16x96xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op num_heads must be positive, got 0}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 0 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_qkv_negative_groups(%x: tensor<2x16x96xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op num_query_groups must be positive, got -2}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = -2 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// Every group holds the same number of query heads.
func.func @split_qkv_indivisible(%x: tensor<2x16x112xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op num_heads (8) must be divisible by num_query_groups (3)}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 3 : i64}
      : tensor<2x16x112xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x3x8xf32>, tensor<2x16x3x8xf32>
  return
}

// -----

// 8 heads and 2 groups make 12 head-sized slices; 100 channels do not divide into them.
func.func @split_qkv_channels(%x: tensor<2x16x100xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op x has 100 channels, not a multiple of heads + 2*groups = 12}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x100xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// Treating the GQA projection as plain multi-head (8 groups) gives the wrong head_dim: 96 / 24 = 4.
func.func @split_qkv_query_shape(%x: tensor<2x16x96xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op query must have shape [2, 16, 8, 4], got 'tensor<2x16x8x8xf32>'}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 8 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// Keys have one head per group, not one per query head.
func.func @split_qkv_key_shape(%x: tensor<2x16x96xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op key must have shape [2, 16, 2, 8], got 'tensor<2x16x8x8xf32>'}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_qkv_value_shape(%x: tensor<2x16x96xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op value must have shape [2, 16, 2, 8], got 'tensor<2x16x2x4xf32>'}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x4xf32>
  return
}

// -----

func.func @split_qkv_element_type(%x: tensor<2x16x96xf32>) {
  // expected-error @+1 {{'mt.split_qkv' op value has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %q, %k, %v = mt.split_qkv %x {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.split_kv
//===----------------------------------------------------------------------===//

func.func @split_kv_rank(%x: tensor<32x16xf32>) {
  // expected-error @+1 {{'mt.split_kv' op x must have rank 3 ([batch, seq, 2 * groups * head_dim]), got 'tensor<32x16xf32>'}}
  %k, %v = mt.split_kv %x {num_query_groups = 2 : i64} : tensor<32x16xf32> -> tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_kv_zero_groups(%x: tensor<2x16x32xf32>) {
  // expected-error @+1 {{'mt.split_kv' op num_query_groups must be positive, got 0}}
  %k, %v = mt.split_kv %x {num_query_groups = 0 : i64} : tensor<2x16x32xf32> -> tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_kv_channels(%x: tensor<2x16x30xf32>) {
  // expected-error @+1 {{'mt.split_kv' op x has 30 channels, not a multiple of 2*groups = 4}}
  %k, %v = mt.split_kv %x {num_query_groups = 2 : i64} : tensor<2x16x30xf32> -> tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_kv_key_shape(%x: tensor<2x16x32xf32>) {
  // expected-error @+1 {{'mt.split_kv' op key must have shape [2, 16, 2, 8], got 'tensor<2x16x4x4xf32>'}}
  %k, %v = mt.split_kv %x {num_query_groups = 2 : i64} : tensor<2x16x32xf32> -> tensor<2x16x4x4xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @split_kv_value_shape(%x: tensor<2x16x32xf32>) {
  // expected-error @+1 {{'mt.split_kv' op value must have shape [2, 16, 2, 8], got 'tensor<2x8x2x8xf32>'}}
  %k, %v = mt.split_kv %x {num_query_groups = 2 : i64} : tensor<2x16x32xf32> -> tensor<2x16x2x8xf32>, tensor<2x8x2x8xf32>
  return
}

// -----

func.func @split_kv_element_type(%x: tensor<2x16x32xf32>) {
  // expected-error @+1 {{'mt.split_kv' op key has element type 'f16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %k, %v = mt.split_kv %x {num_query_groups = 2 : i64} : tensor<2x16x32xf32> -> tensor<2x16x2x8xf16>, tensor<2x16x2x8xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.split_heads and mt.merge_heads (verifyHeadView)
//===----------------------------------------------------------------------===//

// split_heads views x [batch, seq, heads * head_dim] as its result [batch, seq, heads, head_dim]; merge_heads is
// the inverse. Messages name the op's own operand (x) and result.

func.func @split_heads_input_rank(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.split_heads' op x must have rank 3 ([batch, seq, heads * head_dim]), got 'tensor<2x16x8x8xf32>'}}
  %h = mt.split_heads %x : tensor<2x16x8x8xf32> -> tensor<2x16x8x8xf32>
  return
}

// -----

func.func @split_heads_result_rank(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.split_heads' op result must have rank 4 ([batch, seq, heads, head_dim]), got 'tensor<2x16x64xf32>'}}
  %h = mt.split_heads %x : tensor<2x16x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

// 8 heads of 16 channels need 128 channels, not 64.
func.func @split_heads_shape(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.split_heads' op cannot view 'tensor<2x16x64xf32>' as 'tensor<2x16x8x16xf32>': batch and seq must match and hidden must equal heads * head_dim}}
  %h = mt.split_heads %x : tensor<2x16x64xf32> -> tensor<2x16x8x16xf32>
  return
}

// -----

func.func @split_heads_element_type(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.split_heads' op result has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %h = mt.split_heads %x : tensor<2x16x64xf32> -> tensor<2x16x8x8xbf16>
  return
}

// -----

func.func @merge_heads_input_rank(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.merge_heads' op x must have rank 4 ([batch, seq, heads, head_dim]), got 'tensor<2x16x64xf32>'}}
  %m = mt.merge_heads %x : tensor<2x16x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @merge_heads_result_rank(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.merge_heads' op result must have rank 3 ([batch, seq, heads * head_dim]), got 'tensor<2x16x64x1xf32>'}}
  %m = mt.merge_heads %x : tensor<2x16x8x8xf32> -> tensor<2x16x64x1xf32>
  return
}

// -----

// Batch and sequence pass through unchanged.
func.func @merge_heads_shape(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.merge_heads' op cannot view 'tensor<2x16x8x8xf32>' as 'tensor<1x32x64xf32>'}}
  %m = mt.merge_heads %x : tensor<2x16x8x8xf32> -> tensor<1x32x64xf32>
  return
}

// -----

func.func @merge_heads_element_type(%x: tensor<2x16x8x8xbf16>) {
  // expected-error @+1 {{'mt.merge_heads' op result has element type 'f32' but x has 'bf16'; insert an mt.cast to mix precisions}}
  %m = mt.merge_heads %x : tensor<2x16x8x8xbf16> -> tensor<2x16x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.attention
//===----------------------------------------------------------------------===//

func.func @attention_query_rank(%q: tensor<2x16x64xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op query must have rank 4 ([batch, q_seq, heads, head_dim]), got 'tensor<2x16x64xf32>'}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x64xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_key_rank(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x16xf32>) {
  // expected-error @+1 {{'mt.attention' op key must have rank 4 ([batch, kv_seq, groups, head_dim]), got 'tensor<2x16x16xf32>'}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x16xf32>, tensor<2x16x16xf32>
  return
}

// -----

func.func @attention_value_type(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %v: tensor<2x16x2x16xf32>) {
  // expected-error @+1 {{'mt.attention' op value 'tensor<2x16x2x16xf32>' must have the type of key 'tensor<2x16x2x8xf32>'}}
  %o = mt.attention causal %q, %k, %v {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x16xf32>
  return
}

// -----

func.func @attention_num_heads(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op query has 8 heads but num_heads is 16}}
  %o = mt.attention causal %q, %k, %k {num_heads = 16 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_num_groups(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op key and value have 2 heads but num_query_groups is 8}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_indivisible_groups(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x3x8xf32>) {
  // expected-error @+1 {{'mt.attention' op num_heads (8) must be a multiple of num_query_groups (3)}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 3 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x3x8xf32>, tensor<2x16x3x8xf32>
  return
}

// -----

// Zero groups would need keys with zero heads, which the non-empty-shape trait rejects first.
func.func @attention_zero_groups(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x0x8xf32>) {
  // expected-error @+1 {{'mt.attention' op needs non-empty tensors, but operand #1 has type 'tensor<2x16x0x8xf32>'}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 0 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x0x8xf32>, tensor<2x16x0x8xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<2x16x8x8xf32>, %k: tensor<4x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op key 'tensor<4x16x2x8xf32>' must match query 'tensor<2x16x8x8xf32>' in batch and head_dim}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<4x16x2x8xf32>, tensor<4x16x2x8xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x16xf32>) {
  // expected-error @+1 {{'mt.attention' op key 'tensor<2x16x2x16xf32>' must match query 'tensor<2x16x8x8xf32>' in batch and head_dim}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x16xf32>, tensor<2x16x2x16xf32>
  return
}

// -----

// A causal mask is defined for self-attention only; cross-attention is bidirectional or padding.
func.func @attention_causal_cross(%q: tensor<2x4x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op causal attention needs q_seq == kv_seq, got 4 and 16}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x4x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_padding_without_mask(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op padding attention needs a mask operand of shape [batch, kv_seq]}}
  %o = mt.attention padding %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_causal_with_mask(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %m: tensor<2x16xi1>) {
  // expected-error @+1 {{'mt.attention' op only padding attention takes a mask operand}}
  %o = mt.attention causal %q, %k, %k mask(%m : tensor<2x16xi1>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_bidirectional_with_mask(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %m: tensor<2x16xi1>) {
  // expected-error @+1 {{'mt.attention' op only padding attention takes a mask operand}}
  %o = mt.attention bidirectional %q, %k, %k mask(%m : tensor<2x16xi1>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// The padding mask is per key, [batch, kv_seq]; a full [batch, q_seq, kv_seq] mask is not accepted.
func.func @attention_mask_shape(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %m: tensor<2x16x16xi1>) {
  // expected-error @+1 {{'mt.attention' op mask must have shape [2, 16], got 'tensor<2x16x16xi1>'}}
  %o = mt.attention padding %q, %k, %k mask(%m : tensor<2x16x16xi1>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// The mask is an integer tensor (ODS constraint); operand #3 counts query, key, value, mask.
func.func @attention_float_mask(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %m: tensor<2x16xf32>) {
  // expected-error @+1 {{'mt.attention' op operand #3 must be ranked tensor of signless integer values, but got 'tensor<2x16xf32>'}}
  %o = mt.attention padding %q, %k, %k mask(%m : tensor<2x16xf32>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// The bias is [heads, q_seq, kv_seq], with the query heads (8), not the key-value groups (2).
func.func @attention_bias_shape(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %b: tensor<2x16x16xf32>) {
  // expected-error @+1 {{'mt.attention' op bias must have shape [8, 16, 16], got 'tensor<2x16x16xf32>'}}
  %o = mt.attention causal %q, %k, %k bias(%b : tensor<2x16x16xf32>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// The mask comes before the bias in the custom form.
func.func @attention_bias_before_mask(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %m: tensor<2x16xi1>, %b: tensor<8x16x16xf32>) {
  // expected-error @+1 {{expected ':'}}
  %o = mt.attention padding %q, %k, %k bias(%b : tensor<8x16x16xf32>) mask(%m : tensor<2x16xi1>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_scale_zero(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op softmax_scale must be positive and finite, got 0}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.0 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_scale_negative(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op softmax_scale must be positive and finite, got -1.250000e-01}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = -0.125 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// Infinity, written as its IEEE-754 bit pattern.
func.func @attention_scale_infinite(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op softmax_scale must be positive and finite, got INF}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0x7FF0000000000000 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// A dropout probability of 1 would drop everything.
func.func @attention_dropout_one(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op dropout must be in [0, 1), got 1}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64, dropout = 1.0 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

func.func @attention_dropout_negative(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op dropout must be in [0, 1), got -1.000000e-01}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64, dropout = -0.1 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// Queries in f32, keys and values in bf16 (value has key's type, so key is the one reported).
func.func @attention_key_element_type(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xbf16>) {
  // expected-error @+1 {{'mt.attention' op key has element type 'bf16' but query has 'f32'; insert an mt.cast to mix precisions}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xbf16>, tensor<2x16x2x8xbf16>
  return
}

// -----

func.func @attention_bias_element_type(%q: tensor<2x16x8x8xbf16>, %k: tensor<2x16x2x8xbf16>, %b: tensor<8x16x16xf32>) {
  // expected-error @+1 {{'mt.attention' op bias has element type 'f32' but query has 'bf16'; insert an mt.cast to mix precisions}}
  %o = mt.attention causal %q, %k, %k bias(%b : tensor<8x16x16xf32>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xbf16>, tensor<2x16x2x8xbf16>, tensor<2x16x2x8xbf16>
  return
}

// -----

// The result has the query's type (AllTypesMatch, only expressible in the generic form).
func.func @attention_result_type(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op failed to verify that all of {query, result} have same type}}
  %o = "mt.attention"(%q, %k, %k) <{mask_type = #mt<mask causal>, num_heads = 8 : i64, num_query_groups = 2 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, softmax_scale = 0.35355339059327379 : f64}>
      : (tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @attention_missing_scale(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op requires attribute 'softmax_scale'}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// The mask kinds are causal, bidirectional and padding.
func.func @attention_unknown_mask_kind(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+2 {{expected ::mlir::mt::AttnMaskType to be one of: causal, bidirectional, padding}}
  // expected-error @+1 {{failed to parse Mt_AttnMaskTypeAttr parameter 'value' which is to be a `::mlir::mt::AttnMaskType`}}
  %o = mt.attention sliding_window %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}
