// Round trip of every op of the mt dialect through its custom assembly format and through the generic form.
// The file doubles as a tour of the dialect: each function below covers one topic, with the layouts the ops
// expect. The running example is a small GPT-style decoder layer with grouped-query attention:
//
//   batch = 2, seq = 16, hidden = 64, heads = 8, query groups = 2, head_dim = 8, ffn = 256, vocab = 1024.
//
// RUN: megatron-opt %s | megatron-opt | FileCheck %s
// RUN: megatron-opt %s --mlir-print-op-generic | megatron-opt | FileCheck %s
// RUN: megatron-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

//===----------------------------------------------------------------------===//
// The model module
//===----------------------------------------------------------------------===//

// A model is a builtin.module. It may say which model family generated it (`mt.model`, informational) and how
// many micro-batches make up one training iteration (`mt.num_micro_batches`, a positive integer). Its functions
// name their data arguments with the argument attribute `mt.input` ("tokens", "labels", "loss_mask", ...).

// CHECK: module attributes {mt.model = "gpt", mt.num_micro_batches = 8 : i64} {
// GENERIC: "builtin.module"() ({
module attributes {mt.model = "gpt", mt.num_micro_batches = 8 : i64} {

//===----------------------------------------------------------------------===//
// Parameters: mt.param declares, mt.param_ref reads
//===----------------------------------------------------------------------===//

// A parameter is named as a Megatron-LM checkpoint names it. A name containing dots needs no quotes, so the
// printer drops them. The `init` clause takes one of four initialisations:
//   normal(STD)                   N(0, STD^2), --init-method-std; most weights;
//   scaled_normal(STD, layers = L) N(0, (STD / sqrt(2 L))^2); the output projections linear_proj, linear_fc2;
//   zeros, ones                   biases and norm parameters.

// CHECK: mt.param @embedding.word_embeddings.weight : tensor<1024x64xf32> init <normal(0.02)>
mt.param @"embedding.word_embeddings.weight" : tensor<1024x64xf32> init <normal(0.02)>
// CHECK: mt.param @embedding.position_embeddings.weight : tensor<128x64xf32> init <normal(0.02)>
mt.param @"embedding.position_embeddings.weight" : tensor<128x64xf32> init <normal(0.02)>
// CHECK: mt.param @decoder.layers.0.input_layernorm.weight : tensor<64xf32> init <ones>
mt.param @"decoder.layers.0.input_layernorm.weight" : tensor<64xf32> init <ones>
// CHECK: mt.param @decoder.layers.0.input_layernorm.bias : tensor<64xf32> init <zeros>
mt.param @"decoder.layers.0.input_layernorm.bias" : tensor<64xf32> init <zeros>
// CHECK: mt.param @decoder.layers.0.self_attention.linear_qkv.weight : tensor<96x64xf32> init <normal(0.02)>
mt.param @"decoder.layers.0.self_attention.linear_qkv.weight" : tensor<96x64xf32> init <normal(0.02)>
// CHECK: mt.param @decoder.layers.0.self_attention.linear_qkv.bias : tensor<96xf32> init <zeros>
mt.param @"decoder.layers.0.self_attention.linear_qkv.bias" : tensor<96xf32> init <zeros>
// CHECK: mt.param @decoder.layers.0.self_attention.linear_proj.weight : tensor<64x64xf32> init <scaled_normal(0.02, layers = 12)>
mt.param @"decoder.layers.0.self_attention.linear_proj.weight" : tensor<64x64xf32> init <scaled_normal(0.02, layers = 12)>
// CHECK: mt.param @decoder.layers.0.pre_mlp_layernorm.weight : tensor<64xf32> init <ones>
mt.param @"decoder.layers.0.pre_mlp_layernorm.weight" : tensor<64xf32> init <ones>
// CHECK: mt.param @decoder.layers.0.mlp.linear_fc1.weight : tensor<512x64xf32> init <normal(0.02)>
mt.param @"decoder.layers.0.mlp.linear_fc1.weight" : tensor<512x64xf32> init <normal(0.02)>
// CHECK: mt.param @decoder.layers.0.mlp.linear_fc2.weight : tensor<64x256xf32> init <scaled_normal(0.02, layers = 12)>
mt.param @"decoder.layers.0.mlp.linear_fc2.weight" : tensor<64x256xf32> init <scaled_normal(0.02, layers = 12)>
// Standard deviations in exponent notation round trip too (the printer writes the shortest exact decimal).
// CHECK: mt.param @encoder.relative_attention_bias.weight : tensor<32x8xf32> init <normal(1.0E-4)>
mt.param @"encoder.relative_attention_bias.weight" : tensor<32x8xf32> init <normal(1.0e-4)>
// CHECK: mt.param @pooler.dense.weight : tensor<64x64xf32> init <normal(0.02)>
mt.param @"pooler.dense.weight" : tensor<64x64xf32> init <normal(0.02)>
// CHECK: mt.param @pooler.dense.bias : tensor<64xf32> init <zeros>
mt.param @"pooler.dense.bias" : tensor<64xf32> init <zeros>
// A plain identifier needs no quotes either; parameters may be kept in bf16.
// CHECK: mt.param @final_norm_weight : tensor<64xbf16> init <ones>
mt.param @final_norm_weight : tensor<64xbf16> init <ones>

// In the generic form the initialisation is a full #mt.init attribute, and the parameter's type a TypeAttr.
// GENERIC: "mt.param"() <{init = #mt.init<normal(0.02)>, sym_name = "embedding.word_embeddings.weight", type = tensor<1024x64xf32>}> : () -> ()
// GENERIC: "mt.param"() <{init = #mt.init<ones>, sym_name = "decoder.layers.0.input_layernorm.weight", type = tensor<64xf32>}> : () -> ()
// GENERIC: "mt.param"() <{init = #mt.init<zeros>, sym_name = "decoder.layers.0.input_layernorm.bias", type = tensor<64xf32>}> : () -> ()
// GENERIC: "mt.param"() <{init = #mt.init<scaled_normal(0.02, layers = 12)>, sym_name = "decoder.layers.0.self_attention.linear_proj.weight", type = tensor<64x64xf32>}> : () -> ()

// mt.param_ref reads a parameter; its result type must be the declared type. Two references to one parameter
// tie them: the word embeddings double as the language-model head, counted and updated once.

// CHECK-LABEL: func.func @parameters()
// CHECK: %[[TABLE:.*]] = mt.param_ref @embedding.word_embeddings.weight : tensor<1024x64xf32>
// CHECK: %[[HEAD:.*]] = mt.param_ref @embedding.word_embeddings.weight : tensor<1024x64xf32>
// CHECK: return %[[TABLE]], %[[HEAD]] : tensor<1024x64xf32>, tensor<1024x64xf32>
// GENERIC: "mt.param_ref"() <{name = @embedding.word_embeddings.weight}> : () -> tensor<1024x64xf32>
func.func @parameters() -> (tensor<1024x64xf32>, tensor<1024x64xf32>) {
  %table = mt.param_ref @"embedding.word_embeddings.weight" : tensor<1024x64xf32>
  %head = mt.param_ref @"embedding.word_embeddings.weight" : tensor<1024x64xf32>
  return %table, %head : tensor<1024x64xf32>, tensor<1024x64xf32>
}

//===----------------------------------------------------------------------===//
// Embeddings and positions
//===----------------------------------------------------------------------===//

// mt.embedding gathers rows of a [vocab, hidden] table; the result appends hidden to the shape of the ids,
// whatever its rank. mt.add_position_embedding adds learned absolute positions from a [max_positions, hidden]
// table to a [batch, seq, hidden] activation (seq <= max_positions).

// CHECK-LABEL: func.func @embeddings(
// CHECK-SAME: %[[IDS:[^:]*]]: tensor<2x16xi64> {mt.input = "tokens"}
// CHECK: %[[WORDS:.*]] = mt.param_ref @embedding.word_embeddings.weight : tensor<1024x64xf32>
// CHECK: %[[EMB:.*]] = mt.embedding %[[IDS]], %[[WORDS]] : tensor<2x16xi64>, tensor<1024x64xf32> -> tensor<2x16x64xf32>
// CHECK: %[[POS:.*]] = mt.param_ref @embedding.position_embeddings.weight : tensor<128x64xf32>
// CHECK: %[[SUM:.*]] = mt.add_position_embedding %[[EMB]], %[[POS]] : tensor<2x16x64xf32>, tensor<128x64xf32>
// CHECK: return %[[SUM]] : tensor<2x16x64xf32>
// GENERIC: "mt.embedding"(%{{.*}}, %{{.*}}) : (tensor<2x16xi64>, tensor<1024x64xf32>) -> tensor<2x16x64xf32>
// GENERIC: "mt.add_position_embedding"(%{{.*}}, %{{.*}}) : (tensor<2x16x64xf32>, tensor<128x64xf32>) -> tensor<2x16x64xf32>
func.func @embeddings(%ids: tensor<2x16xi64> {mt.input = "tokens"}) -> tensor<2x16x64xf32> {
  %words = mt.param_ref @"embedding.word_embeddings.weight" : tensor<1024x64xf32>
  %emb = mt.embedding %ids, %words : tensor<2x16xi64>, tensor<1024x64xf32> -> tensor<2x16x64xf32>
  %pos = mt.param_ref @"embedding.position_embeddings.weight" : tensor<128x64xf32>
  %sum = mt.add_position_embedding %emb, %pos : tensor<2x16x64xf32>, tensor<128x64xf32>
  return %sum : tensor<2x16x64xf32>
}

// Token-type embeddings (BERT) use i32 ids of rank 1 just as well.
// CHECK-LABEL: func.func @embedding_of_vector(
// CHECK: mt.embedding %{{.*}}, %{{.*}} : tensor<16xi32>, tensor<128x64xf32> -> tensor<16x64xf32>
func.func @embedding_of_vector(%ids: tensor<16xi32>) -> tensor<16x64xf32> {
  %table = mt.param_ref @"embedding.position_embeddings.weight" : tensor<128x64xf32>
  %emb = mt.embedding %ids, %table : tensor<16xi32>, tensor<128x64xf32> -> tensor<16x64xf32>
  return %emb : tensor<16x64xf32>
}

// mt.rope rotates the first `rotary_dim` channels of each head of [batch, seq, heads, head_dim] queries or
// keys; `base` is the rotary base (10000 for GPT-NeoX and LLaMA 2, 500000 for LLaMA 3). A rotary_dim below
// head_dim (partial rotary, e.g. GPT-NeoX's rotary_pct) leaves the remaining channels as they are.

// CHECK-LABEL: func.func @rotary(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<2x16x8x8xf32>
// CHECK: %[[FULL:.*]] = mt.rope %[[Q]] {base = 1.000000e+04 : f64, rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
// CHECK: %[[PART:.*]] = mt.rope %[[FULL]] {base = 5.000000e+05 : f64, rotary_dim = 4 : i64} : tensor<2x16x8x8xf32>
// CHECK: return %[[PART]]
// GENERIC: "mt.rope"(%{{.*}}) <{base = 1.000000e+04 : f64, rotary_dim = 8 : i64}> : (tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xf32>
func.func @rotary(%q: tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xf32> {
  %full = mt.rope %q {base = 10000.0 : f64, rotary_dim = 8 : i64} : tensor<2x16x8x8xf32>
  %part = mt.rope %full {rotary_dim = 4 : i64, base = 500000.0 : f64} : tensor<2x16x8x8xf32>
  return %part : tensor<2x16x8x8xf32>
}

// mt.relative_position_bias turns T5's learned [num_buckets, heads] table into a [heads, q_seq, kv_seq] bias
// for mt.attention: bidirectional for the encoder, one-directional (past keys only) for the decoder.

// CHECK-LABEL: func.func @relative_position_bias()
// CHECK: %[[T:.*]] = mt.param_ref @encoder.relative_attention_bias.weight : tensor<32x8xf32>
// CHECK: mt.relative_position_bias %[[T]] {bidirectional = true, max_distance = 128 : i64, num_buckets = 32 : i64} : tensor<32x8xf32> -> tensor<8x16x16xf32>
// CHECK: mt.relative_position_bias %[[T]] {bidirectional = false, max_distance = 128 : i64, num_buckets = 32 : i64} : tensor<32x8xf32> -> tensor<8x4x16xf32>
// GENERIC: "mt.relative_position_bias"(%{{.*}}) <{bidirectional = true, max_distance = 128 : i64, num_buckets = 32 : i64}> : (tensor<32x8xf32>) -> tensor<8x16x16xf32>
func.func @relative_position_bias() -> (tensor<8x16x16xf32>, tensor<8x4x16xf32>) {
  %table = mt.param_ref @"encoder.relative_attention_bias.weight" : tensor<32x8xf32>
  %encoder = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<8x16x16xf32>
  %decoder = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = false}
      : tensor<32x8xf32> -> tensor<8x4x16xf32>
  return %encoder, %decoder : tensor<8x16x16xf32>, tensor<8x4x16xf32>
}

//===----------------------------------------------------------------------===//
// Norms
//===----------------------------------------------------------------------===//

// Both norms normalise over the last dimension with a [hidden] weight; LayerNorm also takes a bias of the
// weight's type (so only the weight's type is written). `epsilon` must be positive.

// CHECK-LABEL: func.func @norms(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x16x64xf32>
// CHECK: %[[W:.*]] = mt.param_ref @decoder.layers.0.input_layernorm.weight : tensor<64xf32>
// CHECK: %[[B:.*]] = mt.param_ref @decoder.layers.0.input_layernorm.bias : tensor<64xf32>
// CHECK: %[[LN:.*]] = mt.layer_norm %[[X]], %[[W]], %[[B]] {epsilon = 1.000000e-05 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
// CHECK: %[[RW:.*]] = mt.param_ref @decoder.layers.0.pre_mlp_layernorm.weight : tensor<64xf32>
// CHECK: %[[RMS:.*]] = mt.rms_norm %[[LN]], %[[RW]] {epsilon = 9.9999999999999995E-7 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
// CHECK: return %[[RMS]]
// GENERIC: "mt.layer_norm"(%{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 1.000000e-05 : f64}> : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
// GENERIC: "mt.rms_norm"(%{{.*}}, %{{.*}}) <{epsilon = 9.9999999999999995E-7 : f64}> : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
func.func @norms(%x: tensor<2x16x64xf32>) -> tensor<2x16x64xf32> {
  %w = mt.param_ref @"decoder.layers.0.input_layernorm.weight" : tensor<64xf32>
  %b = mt.param_ref @"decoder.layers.0.input_layernorm.bias" : tensor<64xf32>
  %ln = mt.layer_norm %x, %w, %b {epsilon = 1.0e-5 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  %rw = mt.param_ref @"decoder.layers.0.pre_mlp_layernorm.weight" : tensor<64xf32>
  %rms = mt.rms_norm %ln, %rw {epsilon = 1.0e-6 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  return %rms : tensor<2x16x64xf32>
}

// Norms in bf16, with a bf16 weight.
// CHECK-LABEL: func.func @norm_bf16(
// CHECK: mt.rms_norm %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64} : tensor<2x16x64xbf16>, tensor<64xbf16>
func.func @norm_bf16(%x: tensor<2x16x64xbf16>) -> tensor<2x16x64xbf16> {
  %w = mt.param_ref @final_norm_weight : tensor<64xbf16>
  %y = mt.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<2x16x64xbf16>, tensor<64xbf16>
  return %y : tensor<2x16x64xbf16>
}

//===----------------------------------------------------------------------===//
// Linears and the pooler
//===----------------------------------------------------------------------===//

// mt.linear computes x * W^T + b over the last dimension: x is [..., in], the weight [out, in] (PyTorch's
// layout), the optional bias [out]. The bias's type is written after the weight's only when there is one.

// CHECK-LABEL: func.func @linears(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x16x64xf32>
// CHECK: %[[QKVW:.*]] = mt.param_ref @decoder.layers.0.self_attention.linear_qkv.weight : tensor<96x64xf32>
// CHECK: %[[QKVB:.*]] = mt.param_ref @decoder.layers.0.self_attention.linear_qkv.bias : tensor<96xf32>
// CHECK: %[[QKV:.*]] = mt.linear %[[X]], %[[QKVW]], %[[QKVB]] : tensor<2x16x64xf32>, tensor<96x64xf32>, tensor<96xf32> -> tensor<2x16x96xf32>
// CHECK: %[[PW:.*]] = mt.param_ref @decoder.layers.0.self_attention.linear_proj.weight : tensor<64x64xf32>
// CHECK: %[[PROJ:.*]] = mt.linear %[[X]], %[[PW]] : tensor<2x16x64xf32>, tensor<64x64xf32> -> tensor<2x16x64xf32>
// CHECK: %[[HEADW:.*]] = mt.param_ref @embedding.word_embeddings.weight : tensor<1024x64xf32>
// CHECK: %[[LOGITS:.*]] = mt.linear %[[PROJ]], %[[HEADW]] : tensor<2x16x64xf32>, tensor<1024x64xf32> -> tensor<2x16x1024xf32>
// CHECK: return %[[QKV]], %[[LOGITS]]
// The optional bias is an absent operand of the generic form (no operand segments: it is the only optional one).
// GENERIC: "mt.linear"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x16x64xf32>, tensor<96x64xf32>, tensor<96xf32>) -> tensor<2x16x96xf32>
// GENERIC: "mt.linear"(%{{.*}}, %{{.*}}) : (tensor<2x16x64xf32>, tensor<64x64xf32>) -> tensor<2x16x64xf32>
func.func @linears(%x: tensor<2x16x64xf32>) -> (tensor<2x16x96xf32>, tensor<2x16x1024xf32>) {
  // The fused QKV projection, with a bias.
  %qkv_w = mt.param_ref @"decoder.layers.0.self_attention.linear_qkv.weight" : tensor<96x64xf32>
  %qkv_b = mt.param_ref @"decoder.layers.0.self_attention.linear_qkv.bias" : tensor<96xf32>
  %qkv = mt.linear %x, %qkv_w, %qkv_b : tensor<2x16x64xf32>, tensor<96x64xf32>, tensor<96xf32> -> tensor<2x16x96xf32>
  // The attention output projection, without one.
  %proj_w = mt.param_ref @"decoder.layers.0.self_attention.linear_proj.weight" : tensor<64x64xf32>
  %proj = mt.linear %x, %proj_w : tensor<2x16x64xf32>, tensor<64x64xf32> -> tensor<2x16x64xf32>
  // The language-model head: a linear whose weight is the tied word-embedding table.
  %head_w = mt.param_ref @"embedding.word_embeddings.weight" : tensor<1024x64xf32>
  %logits = mt.linear %proj, %head_w : tensor<2x16x64xf32>, tensor<1024x64xf32> -> tensor<2x16x1024xf32>
  return %qkv, %logits : tensor<2x16x96xf32>, tensor<2x16x1024xf32>
}

// A linear applies to any rank >= 2, e.g. a [tokens, in] matrix.
// CHECK-LABEL: func.func @linear_rank2(
// CHECK: mt.linear %{{.*}}, %{{.*}} : tensor<32x64xf32>, tensor<64x64xf32> -> tensor<32x64xf32>
func.func @linear_rank2(%x: tensor<32x64xf32>) -> tensor<32x64xf32> {
  %w = mt.param_ref @"pooler.dense.weight" : tensor<64x64xf32>
  %y = mt.linear %x, %w : tensor<32x64xf32>, tensor<64x64xf32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}

// mt.pooler is BERT's pooler: tanh(x[:, 0, :] * W^T + b), from [batch, seq, hidden] to [batch, out].
// CHECK-LABEL: func.func @pooler(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x16x64xf32>
// CHECK: %[[W:.*]] = mt.param_ref @pooler.dense.weight : tensor<64x64xf32>
// CHECK: %[[B:.*]] = mt.param_ref @pooler.dense.bias : tensor<64xf32>
// CHECK: %[[P:.*]] = mt.pooler %[[X]], %[[W]], %[[B]] : tensor<2x16x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<2x64xf32>
// CHECK: return %[[P]]
// GENERIC: "mt.pooler"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x16x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<2x64xf32>
func.func @pooler(%x: tensor<2x16x64xf32>) -> tensor<2x64xf32> {
  %w = mt.param_ref @"pooler.dense.weight" : tensor<64x64xf32>
  %b = mt.param_ref @"pooler.dense.bias" : tensor<64xf32>
  %p = mt.pooler %x, %w, %b : tensor<2x16x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<2x64xf32>
  return %p : tensor<2x64xf32>
}

//===----------------------------------------------------------------------===//
// Heads: splitting and merging
//===----------------------------------------------------------------------===//

// mt.split_qkv splits the fused QKV projection [batch, seq, (heads + 2 groups) head_dim] into query heads and
// key and value heads. With 8 heads in 2 groups and head_dim 8 there are (8 + 2*2) * 8 = 96 channels; the
// query is [2, 16, 8, 8], key and value [2, 16, 2, 8]. The results print with the names query, key, value.

// CHECK-LABEL: func.func @split_qkv(
// CHECK-SAME: %[[QKV:[^:]*]]: tensor<2x16x96xf32>
// CHECK: %[[Q:.*]], %[[K:.*]], %[[V:.*]] = mt.split_qkv %[[QKV]] {num_heads = 8 : i64, num_query_groups = 2 : i64} : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
// CHECK: return %[[Q]], %[[K]], %[[V]]
// GENERIC: "mt.split_qkv"(%{{.*}}) <{num_heads = 8 : i64, num_query_groups = 2 : i64}> : (tensor<2x16x96xf32>) -> (tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>)
func.func @split_qkv(%qkv: tensor<2x16x96xf32>) -> (tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>) {
  %q, %k, %v = mt.split_qkv %qkv {num_heads = 8 : i64, num_query_groups = 2 : i64}
      : tensor<2x16x96xf32> -> tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return %q, %k, %v : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
}

// mt.split_kv splits a fused key-value projection (cross-attention's linear_kv) [batch, seq, 2 groups head_dim]
// into key and value heads: 2 * 2 * 8 = 32 channels here.

// CHECK-LABEL: func.func @split_kv(
// CHECK-SAME: %[[KV:[^:]*]]: tensor<2x16x32xf32>
// CHECK: %[[K:.*]], %[[V:.*]] = mt.split_kv %[[KV]] {num_query_groups = 2 : i64} : tensor<2x16x32xf32> -> tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
// CHECK: return %[[K]], %[[V]]
// GENERIC: "mt.split_kv"(%{{.*}}) <{num_query_groups = 2 : i64}> : (tensor<2x16x32xf32>) -> (tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>)
func.func @split_kv(%kv: tensor<2x16x32xf32>) -> (tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>) {
  %k, %v = mt.split_kv %kv {num_query_groups = 2 : i64} : tensor<2x16x32xf32> -> tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return %k, %v : tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
}

// mt.split_heads views [batch, seq, heads * head_dim] as [batch, seq, heads, head_dim]; mt.merge_heads is its
// inverse (the input of linear_proj). The number of heads is read off the 4-D type.

// CHECK-LABEL: func.func @split_and_merge_heads(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x16x64xf32>
// CHECK: %[[H:.*]] = mt.split_heads %[[X]] : tensor<2x16x64xf32> -> tensor<2x16x8x8xf32>
// CHECK: %[[M:.*]] = mt.merge_heads %[[H]] : tensor<2x16x8x8xf32> -> tensor<2x16x64xf32>
// CHECK: return %[[M]]
// GENERIC: "mt.split_heads"(%{{.*}}) : (tensor<2x16x64xf32>) -> tensor<2x16x8x8xf32>
// GENERIC: "mt.merge_heads"(%{{.*}}) : (tensor<2x16x8x8xf32>) -> tensor<2x16x64xf32>
func.func @split_and_merge_heads(%x: tensor<2x16x64xf32>) -> tensor<2x16x64xf32> {
  %heads = mt.split_heads %x : tensor<2x16x64xf32> -> tensor<2x16x8x8xf32>
  %merged = mt.merge_heads %heads : tensor<2x16x8x8xf32> -> tensor<2x16x64xf32>
  return %merged : tensor<2x16x64xf32>
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

// mt.attention is softmax(softmax_scale * Q K^T + bias + mask) V. The mask kind comes first: causal (GPT),
// bidirectional (an encoder without padding) or padding (a [batch, kv_seq] integer mask operand, BERT and T5).
// An optional [heads, q_seq, kv_seq] bias is added to the scores. `dropout` defaults to 0 and is then not
// printed. The result has the query's type. softmax_scale here is 1/sqrt(head_dim) = 1/sqrt(8).

// CHECK-LABEL: func.func @attention_causal(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<2x16x8x8xf32>, %[[K:[^:]*]]: tensor<2x16x2x8xf32>, %[[V:[^:]*]]: tensor<2x16x2x8xf32>
// CHECK: %[[O:.*]] = mt.attention causal %[[Q]], %[[K]], %[[V]] {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64} : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
// CHECK: return %[[O]] : tensor<2x16x8x8xf32>
// In the generic form the mask kind is an #mt<mask ...> attribute, the default dropout is explicit and
// operandSegmentSizes records which of mask and bias are present.
// GENERIC: "mt.attention"(%{{.*}}, %{{.*}}, %{{.*}}) <{dropout = 0.000000e+00 : f64, mask_type = #mt<mask causal>, num_heads = 8 : i64, num_query_groups = 2 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, softmax_scale = 0.35355339059327379 : f64}> : (tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>) -> tensor<2x16x8x8xf32>
func.func @attention_causal(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %v: tensor<2x16x2x8xf32>)
    -> tensor<2x16x8x8xf32> {
  %o = mt.attention causal %q, %k, %v {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return %o : tensor<2x16x8x8xf32>
}

// Bidirectional cross-attention: 4 decoder queries attend to 16 encoder keys, plain multi-head (groups = heads),
// with attention dropout.
// CHECK-LABEL: func.func @attention_bidirectional(
// CHECK: mt.attention bidirectional %{{.*}}, %{{.*}}, %{{.*}} {dropout = 1.000000e-01 : f64, num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 1.250000e-01 : f64} : tensor<2x4x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>
// GENERIC: mask_type = #mt<mask bidirectional>
func.func @attention_bidirectional(%q: tensor<2x4x8x8xf32>, %kv: tensor<2x16x8x8xf32>) -> tensor<2x4x8x8xf32> {
  %o = mt.attention bidirectional %q, %kv, %kv {num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 0.125 : f64, dropout = 0.1 : f64}
      : tensor<2x4x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>
  return %o : tensor<2x4x8x8xf32>
}

// Padding attention takes its mask as `mask(%m : type)`; any integer element type will do.
// CHECK-LABEL: func.func @attention_padding(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<2x16x8x8xf32>, %[[K:[^:]*]]: tensor<2x16x2x8xf32>, %[[V:[^:]*]]: tensor<2x16x2x8xf32>, %[[M:[^:]*]]: tensor<2x16xi1> {mt.input = "padding_mask"}
// CHECK: %[[O:.*]] = mt.attention padding %[[Q]], %[[K]], %[[V]] mask(%[[M]] : tensor<2x16xi1>) {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64} : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
// CHECK: return %[[O]]
// GENERIC: mask_type = #mt<mask padding>
// GENERIC-SAME: operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>
func.func @attention_padding(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>, %v: tensor<2x16x2x8xf32>,
                             %mask: tensor<2x16xi1> {mt.input = "padding_mask"}) -> tensor<2x16x8x8xf32> {
  %o = mt.attention padding %q, %k, %v mask(%mask : tensor<2x16xi1>)
      {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return %o : tensor<2x16x8x8xf32>
}

// T5's encoder self-attention: padding mask plus the relative position bias, `bias(%b : type)` after the mask.
// T5 does not scale the scores, hence softmax_scale = 1. The decoder's causal self-attention takes a bias without
// a mask.
// CHECK-LABEL: func.func @attention_with_bias(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<2x16x8x8xf32>, %[[KV:[^:]*]]: tensor<2x16x8x8xf32>, %[[M:[^:]*]]: tensor<2x16xi64>
// CHECK: %[[T:.*]] = mt.param_ref @encoder.relative_attention_bias.weight : tensor<32x8xf32>
// CHECK: %[[B:.*]] = mt.relative_position_bias %[[T]]
// CHECK: %[[ENC:.*]] = mt.attention padding %[[Q]], %[[KV]], %[[KV]] mask(%[[M]] : tensor<2x16xi64>) bias(%[[B]] : tensor<8x16x16xf32>) {num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 1.000000e+00 : f64} : tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>
// CHECK: %[[DEC:.*]] = mt.attention causal %[[ENC]], %[[KV]], %[[KV]] bias(%[[B]] : tensor<8x16x16xf32>) {num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 1.000000e+00 : f64} : tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>
// CHECK: return %[[DEC]]
// GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>
// GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 0, 1>
func.func @attention_with_bias(%q: tensor<2x16x8x8xf32>, %kv: tensor<2x16x8x8xf32>, %mask: tensor<2x16xi64>)
    -> tensor<2x16x8x8xf32> {
  %table = mt.param_ref @"encoder.relative_attention_bias.weight" : tensor<32x8xf32>
  %bias = mt.relative_position_bias %table {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true}
      : tensor<32x8xf32> -> tensor<8x16x16xf32>
  %enc = mt.attention padding %q, %kv, %kv mask(%mask : tensor<2x16xi64>) bias(%bias : tensor<8x16x16xf32>)
      {num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 1.0 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>
  %dec = mt.attention causal %enc, %kv, %kv bias(%bias : tensor<8x16x16xf32>)
      {num_heads = 8 : i64, num_query_groups = 8 : i64, softmax_scale = 1.0 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>, tensor<2x16x8x8xf32>
  return %dec : tensor<2x16x8x8xf32>
}

//===----------------------------------------------------------------------===//
// Activations, residuals, dropout and casts
//===----------------------------------------------------------------------===//

// mt.gelu defaults to the tanh approximation (Megatron's fused bias-GeLU), which is then not printed; the exact
// erf form is `approximation = #mt<gelu_approximation none>`. mt.swiglu halves the last dimension
// (2 * ffn -> ffn). mt.add is the residual connection; mt.dropout zeroes with probability `rate`.

// CHECK-LABEL: func.func @mlp(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x16x64xf32>
// CHECK: %[[FC1W:.*]] = mt.param_ref @decoder.layers.0.mlp.linear_fc1.weight : tensor<512x64xf32>
// CHECK: %[[FC1:.*]] = mt.linear %[[X]], %[[FC1W]] : tensor<2x16x64xf32>, tensor<512x64xf32> -> tensor<2x16x512xf32>
// CHECK: %[[GLU:.*]] = mt.swiglu %[[FC1]] : tensor<2x16x512xf32> -> tensor<2x16x256xf32>
// CHECK: %[[GT:.*]] = mt.gelu %[[GLU]] : tensor<2x16x256xf32>
// CHECK: %[[GT2:.*]] = mt.gelu %[[GT]] : tensor<2x16x256xf32>
// CHECK: %[[GE:.*]] = mt.gelu %[[GT2]] {approximation = #mt<gelu_approximation none>} : tensor<2x16x256xf32>
// CHECK: %[[FC2W:.*]] = mt.param_ref @decoder.layers.0.mlp.linear_fc2.weight : tensor<64x256xf32>
// CHECK: %[[FC2:.*]] = mt.linear %[[GE]], %[[FC2W]] : tensor<2x16x256xf32>, tensor<64x256xf32> -> tensor<2x16x64xf32>
// CHECK: %[[DROP:.*]] = mt.dropout %[[FC2]] {rate = 1.000000e-01 : f64} : tensor<2x16x64xf32>
// CHECK: %[[RES:.*]] = mt.add %[[X]], %[[DROP]] : tensor<2x16x64xf32>
// CHECK: return %[[RES]]
// GENERIC: "mt.swiglu"(%{{.*}}) : (tensor<2x16x512xf32>) -> tensor<2x16x256xf32>
// GENERIC: "mt.gelu"(%{{.*}}) <{approximation = #mt<gelu_approximation tanh>}> : (tensor<2x16x256xf32>) -> tensor<2x16x256xf32>
// GENERIC: "mt.gelu"(%{{.*}}) <{approximation = #mt<gelu_approximation tanh>}> : (tensor<2x16x256xf32>) -> tensor<2x16x256xf32>
// GENERIC: "mt.gelu"(%{{.*}}) <{approximation = #mt<gelu_approximation none>}> : (tensor<2x16x256xf32>) -> tensor<2x16x256xf32>
// GENERIC: "mt.dropout"(%{{.*}}) <{rate = 1.000000e-01 : f64}> : (tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
// GENERIC: "mt.add"(%{{.*}}, %{{.*}}) : (tensor<2x16x64xf32>, tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
func.func @mlp(%x: tensor<2x16x64xf32>) -> tensor<2x16x64xf32> {
  %fc1_w = mt.param_ref @"decoder.layers.0.mlp.linear_fc1.weight" : tensor<512x64xf32>
  %fc1 = mt.linear %x, %fc1_w : tensor<2x16x64xf32>, tensor<512x64xf32> -> tensor<2x16x512xf32>
  %glu = mt.swiglu %fc1 : tensor<2x16x512xf32> -> tensor<2x16x256xf32>
  // Both approximations (the default and the explicit tanh print alike), then the exact form.
  %g_default = mt.gelu %glu : tensor<2x16x256xf32>
  %g_tanh = mt.gelu %g_default {approximation = #mt<gelu_approximation tanh>} : tensor<2x16x256xf32>
  %g_exact = mt.gelu %g_tanh {approximation = #mt<gelu_approximation none>} : tensor<2x16x256xf32>
  %fc2_w = mt.param_ref @"decoder.layers.0.mlp.linear_fc2.weight" : tensor<64x256xf32>
  %fc2 = mt.linear %g_exact, %fc2_w : tensor<2x16x256xf32>, tensor<64x256xf32> -> tensor<2x16x64xf32>
  %drop = mt.dropout %fc2 {rate = 0.1 : f64} : tensor<2x16x64xf32>
  %res = mt.add %x, %drop : tensor<2x16x64xf32>
  return %res : tensor<2x16x64xf32>
}

// mt.cast converts the element type and keeps the shape: here f32 activations to bf16 and back.
// CHECK-LABEL: func.func @casts(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x16x64xf32>
// CHECK: %[[H:.*]] = mt.cast %[[X]] : tensor<2x16x64xf32> to tensor<2x16x64xbf16>
// CHECK: %[[F:.*]] = mt.cast %[[H]] : tensor<2x16x64xbf16> to tensor<2x16x64xf32>
// CHECK: return %[[H]], %[[F]]
// GENERIC: "mt.cast"(%{{.*}}) : (tensor<2x16x64xf32>) -> tensor<2x16x64xbf16>
func.func @casts(%x: tensor<2x16x64xf32>) -> (tensor<2x16x64xbf16>, tensor<2x16x64xf32>) {
  %half = mt.cast %x : tensor<2x16x64xf32> to tensor<2x16x64xbf16>
  %full = mt.cast %half : tensor<2x16x64xbf16> to tensor<2x16x64xf32>
  return %half, %full : tensor<2x16x64xbf16>, tensor<2x16x64xf32>
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

// mt.cross_entropy takes [..., vocab] logits, integer labels and an optional float loss mask of the logits'
// shape without vocab, and yields the (masked) mean loss as a 0-D tensor. The mask's type is written only when
// there is one.
//
// A model function names each argument for the runtime that feeds it with the argument attribute mt.input.

// CHECK-LABEL: func.func @loss(
// CHECK-SAME: %[[LOGITS:[^:]*]]: tensor<2x16x1024xf32>, %[[LABELS:[^:]*]]: tensor<2x16xi64> {mt.input = "labels"}, %[[MASK:[^:]*]]: tensor<2x16xf32> {mt.input = "loss_mask"}
// CHECK: %[[L:.*]] = mt.cross_entropy %[[LOGITS]], %[[LABELS]], %[[MASK]] : tensor<2x16x1024xf32>, tensor<2x16xi64>, tensor<2x16xf32> -> tensor<f32>
// CHECK: return %[[L]] : tensor<f32>
// GENERIC: "func.func"() <{arg_attrs = [{}, {mt.input = "labels"}, {mt.input = "loss_mask"}]
// GENERIC: "mt.cross_entropy"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x16x1024xf32>, tensor<2x16xi64>, tensor<2x16xf32>) -> tensor<f32>
func.func @loss(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16xi64> {mt.input = "labels"},
                %loss_mask: tensor<2x16xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
  %loss = mt.cross_entropy %logits, %labels, %loss_mask
      : tensor<2x16x1024xf32>, tensor<2x16xi64>, tensor<2x16xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// Without a mask the loss is the plain mean, as for BERT's sentence-order prediction: [batch, 2] logits
// against [batch] labels.
// CHECK-LABEL: func.func @loss_unmasked(
// CHECK-SAME: %[[LOGITS:[^:]*]]: tensor<2x2xf32>, %[[ORDER:[^:]*]]: tensor<2xi64> {mt.input = "sentence_order"}
// CHECK: %[[L:.*]] = mt.cross_entropy %[[LOGITS]], %[[ORDER]] : tensor<2x2xf32>, tensor<2xi64> -> tensor<f32>
// CHECK: return %[[L]] : tensor<f32>
// GENERIC: "mt.cross_entropy"(%{{.*}}, %{{.*}}) : (tensor<2x2xf32>, tensor<2xi64>) -> tensor<f32>
func.func @loss_unmasked(%logits: tensor<2x2xf32>, %order: tensor<2xi64> {mt.input = "sentence_order"}) -> tensor<f32> {
  %loss = mt.cross_entropy %logits, %order : tensor<2x2xf32>, tensor<2xi64> -> tensor<f32>
  return %loss : tensor<f32>
}

// In the generic form the module's attributes follow its region.
// GENERIC: }) {mt.model = "gpt", mt.num_micro_batches = 8 : i64} : () -> ()
}
