// Errors of the embedding and position ops (dialects/mt/MtOps.cpp: EmbeddingOp, AddPositionEmbeddingOp, RopeOp,
// RelativePositionBiasOp).
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// mt.embedding
//===----------------------------------------------------------------------===//

func.func @embedding_table_rank(%ids: tensor<2x16xi64>, %table: tensor<1024xf32>) {
  // expected-error @+1 {{'mt.embedding' op table must have rank 2 ([vocab, hidden]), got 'tensor<1024xf32>'}}
  %e = mt.embedding %ids, %table : tensor<2x16xi64>, tensor<1024xf32> -> tensor<2x16x1024xf32>
  return
}

// -----

// The result appends the table's hidden size to the ids' shape: [2, 16] ++ [64].
func.func @embedding_result_shape(%ids: tensor<2x16xi64>, %table: tensor<1024x64xf32>) {
  // expected-error @+1 {{'mt.embedding' op result must have shape [2, 16, 64], got 'tensor<2x16x1024xf32>'}}
  %e = mt.embedding %ids, %table : tensor<2x16xi64>, tensor<1024x64xf32> -> tensor<2x16x1024xf32>
  return
}

// -----

func.func @embedding_element_type(%ids: tensor<2x16xi64>, %table: tensor<1024x64xf32>) {
  // expected-error @+1 {{'mt.embedding' op result has element type 'bf16' but table has 'f32'; insert an mt.cast to mix precisions}}
  %e = mt.embedding %ids, %table : tensor<2x16xi64>, tensor<1024x64xf32> -> tensor<2x16x64xbf16>
  return
}

// -----

// Token ids are integers (ODS constraint).
func.func @embedding_float_ids(%ids: tensor<2x16xf32>, %table: tensor<1024x64xf32>) {
  // expected-error @+1 {{'mt.embedding' op operand #0 must be ranked tensor of signless integer values, but got 'tensor<2x16xf32>'}}
  %e = mt.embedding %ids, %table : tensor<2x16xf32>, tensor<1024x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.add_position_embedding
//===----------------------------------------------------------------------===//

func.func @position_x_rank(%x: tensor<16x64xf32>, %table: tensor<128x64xf32>) {
  // expected-error @+1 {{'mt.add_position_embedding' op x must have rank 3 ([batch, seq, hidden]), got 'tensor<16x64xf32>'}}
  %y = mt.add_position_embedding %x, %table : tensor<16x64xf32>, tensor<128x64xf32>
  return
}

// -----

func.func @position_table_rank(%x: tensor<2x16x64xf32>, %table: tensor<128x64x1xf32>) {
  // expected-error @+1 {{'mt.add_position_embedding' op table must have rank 2 ([max_positions, hidden]), got 'tensor<128x64x1xf32>'}}
  %y = mt.add_position_embedding %x, %table : tensor<2x16x64xf32>, tensor<128x64x1xf32>
  return
}

// -----

func.func @position_hidden(%x: tensor<2x16x64xf32>, %table: tensor<128x32xf32>) {
  // expected-error @+1 {{'mt.add_position_embedding' op table has hidden size 32 but x has 64}}
  %y = mt.add_position_embedding %x, %table : tensor<2x16x64xf32>, tensor<128x32xf32>
  return
}

// -----

// A sequence longer than --max-position-embeddings has no position embedding for its tail.
func.func @position_too_long(%x: tensor<2x256x64xf32>, %table: tensor<128x64xf32>) {
  // expected-error @+1 {{'mt.add_position_embedding' op sequence length 256 exceeds the 128 positions of the table (--max-position-embeddings)}}
  %y = mt.add_position_embedding %x, %table : tensor<2x256x64xf32>, tensor<128x64xf32>
  return
}

// -----

func.func @position_element_type(%x: tensor<2x16x64xf32>, %table: tensor<128x64xbf16>) {
  // expected-error @+1 {{'mt.add_position_embedding' op table has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %y = mt.add_position_embedding %x, %table : tensor<2x16x64xf32>, tensor<128x64xbf16>
  return
}

// -----

// The result has x's type (AllTypesMatch, only expressible in the generic form).
func.func @position_result_type(%x: tensor<2x16x64xf32>, %table: tensor<128x64xf32>) {
  // expected-error @+1 {{'mt.add_position_embedding' op failed to verify that all of {x, result} have same type}}
  %y = "mt.add_position_embedding"(%x, %table) : (tensor<2x16x64xf32>, tensor<128x64xf32>) -> tensor<2x16x64xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.rope
//===----------------------------------------------------------------------===//

// RoPE works per head: it needs the split [batch, seq, heads, head_dim] layout.
func.func @rope_rank(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.rope' op x must have rank 4 ([batch, seq, heads, head_dim]), got 'tensor<2x16x64xf32>'}}
  %y = mt.rope %x {base = 10000.0 : f64, rotary_dim = 8 : i64} : tensor<2x16x64xf32>
  return
}

// -----

func.func @rope_rotary_dim_zero(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op rotary_dim must be even and in (0, head_dim = 8], got 0}}
  %y = mt.rope %x {base = 10000.0 : f64, rotary_dim = 0 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

func.func @rope_rotary_dim_negative(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op rotary_dim must be even and in (0, head_dim = 8], got -8}}
  %y = mt.rope %x {base = 10000.0 : f64, rotary_dim = -8 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

// Channels are rotated in pairs (i, i + rotary_dim / 2).
func.func @rope_rotary_dim_odd(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op rotary_dim must be even and in (0, head_dim = 8], got 7}}
  %y = mt.rope %x {base = 10000.0 : f64, rotary_dim = 7 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

func.func @rope_rotary_dim_too_large(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op rotary_dim must be even and in (0, head_dim = 8], got 16}}
  %y = mt.rope %x {base = 10000.0 : f64, rotary_dim = 16 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

// A base of 1 would not rotate at all.
func.func @rope_base_one(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op base must be a finite number greater than 1, got 1}}
  %y = mt.rope %x {base = 1.0 : f64, rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

func.func @rope_base_negative(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op base must be a finite number greater than 1, got -1.000000e+04}}
  %y = mt.rope %x {base = -10000.0 : f64, rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

// Infinity, written as its IEEE-754 bit pattern.
func.func @rope_base_infinite(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op base must be a finite number greater than 1, got INF}}
  %y = mt.rope %x {base = 0x7FF0000000000000 : f64, rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

// NaN.
func.func @rope_base_nan(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op base must be a finite number greater than 1, got nan}}
  %y = mt.rope %x {base = 0x7FF8000000000000 : f64, rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

// Both attributes are required (ODS).
func.func @rope_missing_base(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op requires attribute 'base'}}
  %y = mt.rope %x {rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
  return
}

// -----

func.func @rope_result_type(%x: tensor<2x16x8x8xf32>) {
  // expected-error @+1 {{'mt.rope' op failed to verify that all of {x, result} have same type}}
  %y = "mt.rope"(%x) <{base = 10000.0 : f64, rotary_dim = 8 : i64}> : (tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.relative_position_bias
//===----------------------------------------------------------------------===//

func.func @bias_table_rank(%table: tensor<32xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op table must have rank 2 ([num_buckets, heads]), got 'tensor<32xf32>'}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32xf32> -> tensor<8x16x16xf32>
  return
}

// -----

// The bias is per head: [heads, q_seq, kv_seq], not per batch.
func.func @bias_result_rank(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op result must have rank 3 ([heads, q_seq, kv_seq]), got 'tensor<2x8x16x16xf32>'}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<2x8x16x16xf32>
  return
}

// -----

func.func @bias_buckets(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op table has 32 rows but num_buckets is 64}}
  %b = mt.relative_position_bias %table {num_buckets = 64 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<8x16x16xf32>
  return
}

// -----

func.func @bias_heads(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op result has 12 heads but the table has 8}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<12x16x16xf32>
  return
}

// -----

// Bidirectional bucketing halves the buckets between directions, and each half needs two.
func.func @bias_too_few_buckets_bidirectional(%table: tensor<2x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op num_buckets must be at least 4, got 2}}
  %b = mt.relative_position_bias %table {num_buckets = 2 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<2x8xf32> -> tensor<8x16x16xf32>
  return
}

// -----

func.func @bias_too_few_buckets(%table: tensor<1x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op num_buckets must be at least 2, got 1}}
  %b = mt.relative_position_bias %table {num_buckets = 1 : i64, max_distance = 128 : i64, bidirectional = false}
      : tensor<1x8xf32> -> tensor<8x16x16xf32>
  return
}

// -----

// With 32 bidirectional buckets, 16 per direction, distances 0..7 have exact buckets; max_distance must exceed 8.
func.func @bias_max_distance_bidirectional(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op max_distance must exceed the 8 exactly represented distances, got 8}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 8 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<8x16x16xf32>
  return
}

// -----

// One-directional: all 32 buckets for past keys, 16 exact distances.
func.func @bias_max_distance(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op max_distance must exceed the 16 exactly represented distances, got 16}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 16 : i64, bidirectional = false}
      : tensor<32x8xf32> -> tensor<8x16x16xf32>
  return
}

// -----

func.func @bias_element_type(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op result has element type 'bf16' but table has 'f32'; insert an mt.cast to mix precisions}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<8x16x16xbf16>
  return
}

// -----

func.func @bias_missing_direction(%table: tensor<32x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op requires attribute 'bidirectional'}}
  %b = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64}
      : tensor<32x8xf32> -> tensor<8x16x16xf32>
  return
}

// -----

// Bidirectional buckets split evenly between keys before and after the query.
func.func @relative_odd_bidirectional(%t: tensor<33x4xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias' op bidirectional num_buckets must be even (half per direction), got 33}}
  %b = mt.relative_position_bias %t {num_buckets = 33 : i64, max_distance = 128 : i64, bidirectional = true} : tensor<33x4xf32> -> tensor<4x8x8xf32>
  return
}
