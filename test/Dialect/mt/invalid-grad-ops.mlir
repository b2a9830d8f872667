// Verifier errors of the gradient ops (and of mt.linear_grad_input_gelu, which --mt-fuse-elementwise makes of two).
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

func.func @linear_grad_input(%dy: tensor<2x4xf32>, %w: tensor<3x8xf32>) {
  // expected-error @+1 {{'mt.linear_grad_input' op dy 'tensor<2x4xf32>' must end in out = 3 (weight's rows)}}
  %dx = mt.linear_grad_input %dy, %w : tensor<2x4xf32>, tensor<3x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @linear_grad_input_result(%dy: tensor<2x4xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{'mt.linear_grad_input' op dx must have shape [2, 8], got 'tensor<2x4xf32>'}}
  %dx = mt.linear_grad_input %dy, %w : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @linear_grad_weight_rows(%dy: tensor<2x4xf32>, %x: tensor<3x8xf32>) {
  // expected-error @+1 {{'mt.linear_grad_weight' op dy 'tensor<2x4xf32>' and x 'tensor<3x8xf32>' must agree in their leading dimensions}}
  %dw = mt.linear_grad_weight %dy, %x : tensor<2x4xf32>, tensor<3x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @linear_grad_weight_result(%dy: tensor<2x4xf32>, %x: tensor<2x8xf32>) {
  // expected-error @+1 {{'mt.linear_grad_weight' op dweight must have shape [4, 8], got 'tensor<8x4xf32>'}}
  %dw = mt.linear_grad_weight %dy, %x : tensor<2x4xf32>, tensor<2x8xf32> -> tensor<8x4xf32>
  return
}

// -----

func.func @sum_rows(%dy: tensor<2x4xf32>) {
  // expected-error @+1 {{'mt.sum_rows' op result must have shape [4], got 'tensor<2xf32>'}}
  %db = mt.sum_rows %dy : tensor<2x4xf32> -> tensor<2xf32>
  return
}

// -----

func.func @embedding_grad(%ids: tensor<2x4xi32>, %dy: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'mt.embedding_grad' op dy must have shape [2, 4, 16], got 'tensor<2x4x8xf32>'}}
  %d = mt.embedding_grad %ids, %dy : tensor<2x4xi32>, tensor<2x4x8xf32> -> tensor<32x16xf32>
  return
}

// -----

func.func @position_embedding_grad(%dy: tensor<2x8x4xf32>) {
  // expected-error @+1 {{'mt.position_embedding_grad' op dtable 'tensor<4x4xf32>' must be [>= seq, hidden] for dy 'tensor<2x8x4xf32>'}}
  %d = mt.position_embedding_grad %dy : tensor<2x8x4xf32> -> tensor<4x4xf32>
  return
}

// -----

func.func @relative_position_bias_grad(%d: tensor<4x8x8xf32>) {
  // expected-error @+1 {{'mt.relative_position_bias_grad' op dtable must have shape [32, 4], got 'tensor<32x8xf32>'}}
  %t = mt.relative_position_bias_grad %d {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true} : tensor<4x8x8xf32> -> tensor<32x8xf32>
  return
}

// -----

func.func @attention_grad_bias(%q: tensor<1x4x2x8xf32>, %b: tensor<2x4x4xf32>) {
  // expected-error @+1 {{'mt.attention_grad' op has a dbias result exactly when it has a bias operand}}
  %dq, %dk, %dv = mt.attention_grad bidirectional %q, %q, %q, %q, %q bias(%b : tensor<2x4x4xf32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
  return
}

// -----

func.func @attention_grad_types(%q: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{'mt.attention_grad' op dquery, dkey and dvalue must have the types of query, key and value}}
  %dq, %dk, %dv = mt.attention_grad causal %q, %q, %q, %q, %q {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32> -> tensor<1x4x2x4xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
  return
}

// -----

func.func @swiglu_grad(%dy: tensor<2x8xf32>, %x: tensor<2x8xf32>) {
  // expected-error @+1 {{'mt.swiglu_grad' op dy must have shape [2, 4], got 'tensor<2x8xf32>'}}
  %dx = mt.swiglu_grad %dy, %x : tensor<2x8xf32>, tensor<2x8xf32>
  return
}

// -----

func.func @cross_entropy_grad(%dl: tensor<f32>, %l: tensor<2x16xf32>, %t: tensor<3xi32>) {
  // expected-error @+1 {{'mt.cross_entropy_grad' op labels must have shape [2], got 'tensor<3xi32>'}}
  %d = mt.cross_entropy_grad %dl, %l, %t : tensor<f32>, tensor<2x16xf32>, tensor<3xi32>
  return
}

// -----

func.func @merge_qkv(%q: tensor<1x4x3x8xf32>, %k: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{'mt.merge_qkv' op needs query [b, s, heads, d] and key, value [b, s, groups, d] with groups dividing heads}}
  %x = mt.merge_qkv %q, %k, %k : tensor<1x4x3x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32> -> tensor<1x4x56xf32>
  return
}

// -----

func.func @merge_kv(%k: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{'mt.merge_kv' op result must have shape [1, 4, 32], got 'tensor<1x4x16xf32>'}}
  %x = mt.merge_kv %k, %k : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32> -> tensor<1x4x16xf32>
  return
}

// -----

mt.param @w : tensor<4x8xf32> init <zeros>
func.func @grad_accumulate_type(%g: tensor<8x4xf32>) {
  // expected-error @+1 {{'mt.grad_accumulate' op accumulates 'tensor<8x4xf32>' into parameter @w of type 'tensor<4x8xf32>'}}
  mt.grad_accumulate @w, %g : tensor<8x4xf32>
  return
}

// -----

func.func @grad_accumulate_missing(%g: tensor<8x4xf32>) {
  // expected-error @+1 {{'mt.grad_accumulate' op refers to @nothing, which is not declared by an mt.param}}
  mt.grad_accumulate @nothing, %g : tensor<8x4xf32>
  return
}

// -----

func.func @pooler_grad(%dy: tensor<2x4xf32>, %x: tensor<2x3x4xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{'mt.pooler_grad' op dbias must have shape [4], got 'tensor<3xf32>'}}
  %dx, %dw, %db = mt.pooler_grad %dy, %dy, %x, %w : tensor<2x4xf32>, tensor<2x3x4xf32>, tensor<4x4xf32> -> tensor<3xf32>
  return
}

// -----

// mt.linear_grad_input_gelu (--mt-fuse-elementwise): mt.linear_grad_input's checks on dpre, and pre has its type.
func.func @linear_grad_input_gelu_dy(%dy: tensor<2x4xf32>, %w: tensor<3x8xf32>, %pre: tensor<2x8xf32>) {
  // expected-error @+1 {{'mt.linear_grad_input_gelu' op dy 'tensor<2x4xf32>' must end in out = 3 (weight's rows)}}
  %d = mt.linear_grad_input_gelu %dy, %w, %pre : tensor<2x4xf32>, tensor<3x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @linear_grad_input_gelu_result(%dy: tensor<2x4xf32>, %w: tensor<4x8xf32>, %pre: tensor<2x4xf32>) {
  // expected-error @+1 {{'mt.linear_grad_input_gelu' op dpre must have shape [2, 8], got 'tensor<2x4xf32>'}}
  %d = mt.linear_grad_input_gelu %dy, %w, %pre : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @linear_grad_input_gelu_pre(%dy: tensor<2x4xf32>, %w: tensor<4x8xf32>, %pre: tensor<2x4xf32>) {
  // expected-error @+1 {{'mt.linear_grad_input_gelu' op failed to verify that all of {pre, dpre} have same type}}
  %d = "mt.linear_grad_input_gelu"(%dy, %w, %pre) : (tensor<2x4xf32>, tensor<4x8xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @linear_grad_input_gelu_element_type(%dy: tensor<2x4xbf16>, %w: tensor<4x8xf32>, %pre: tensor<2x8xf32>) {
  // expected-error @+1 {{'mt.linear_grad_input_gelu' op weight has element type 'f32' but dy has 'bf16'; insert an mt.cast to mix precisions}}
  %d = mt.linear_grad_input_gelu %dy, %w, %pre : tensor<2x4xbf16>, tensor<4x8xf32> -> tensor<2x8xf32>
  return
}
