// Errors of the norms, mt.linear, mt.linear_gelu and mt.pooler (dialects/mt/MtOps.cpp: verifyNorm for LayerNormOp
// and RmsNormOp, verifyLinear for LinearOp and LinearGeluOp, PoolerOp::verify).
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// mt.layer_norm and mt.rms_norm (verifyNorm)
//===----------------------------------------------------------------------===//

// A 0-D tensor has no dimension to normalise over.
func.func @layer_norm_scalar(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op x must have at least one dimension}}
  %y = mt.layer_norm %x, %w, %w {epsilon = 1.0e-5 : f64} : tensor<f32>, tensor<1xf32>
  return
}

// -----

func.func @rms_norm_scalar(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{'mt.rms_norm' op x must have at least one dimension}}
  %y = mt.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<f32>, tensor<1xf32>
  return
}

// -----

// The weight is [hidden], the last dimension of x.
func.func @layer_norm_weight_shape(%x: tensor<2x16x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op weight must have shape [64], got 'tensor<32xf32>'}}
  %y = mt.layer_norm %x, %w, %w {epsilon = 1.0e-5 : f64} : tensor<2x16x64xf32>, tensor<32xf32>
  return
}

// -----

// A [seq, hidden] weight is not a per-channel weight.
func.func @rms_norm_weight_shape(%x: tensor<2x16x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{'mt.rms_norm' op weight must have shape [64], got 'tensor<16x64xf32>'}}
  %y = mt.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<2x16x64xf32>, tensor<16x64xf32>
  return
}

// -----

func.func @layer_norm_epsilon_zero(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op epsilon must be positive and finite, got 0}}
  %y = mt.layer_norm %x, %w, %w {epsilon = 0.0 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @rms_norm_epsilon_negative(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'mt.rms_norm' op epsilon must be positive and finite, got -1.000000e-06}}
  %y = mt.rms_norm %x, %w {epsilon = -1.0e-6 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  return
}

// -----

// Infinity, written as its IEEE-754 bit pattern.
func.func @rms_norm_epsilon_infinite(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'mt.rms_norm' op epsilon must be positive and finite, got INF}}
  %y = mt.rms_norm %x, %w {epsilon = 0x7FF0000000000000 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  return
}

// -----

// NaN.
func.func @layer_norm_epsilon_nan(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op epsilon must be positive and finite, got nan}}
  %y = mt.layer_norm %x, %w, %w {epsilon = 0x7FF8000000000000 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  return
}

// -----

// bf16 activations with an f32 weight: cast one of them first.
func.func @layer_norm_element_type(%x: tensor<2x16x64xbf16>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op weight has element type 'f32' but x has 'bf16'; insert an mt.cast to mix precisions}}
  %y = mt.layer_norm %x, %w, %w {epsilon = 1.0e-5 : f64} : tensor<2x16x64xbf16>, tensor<64xf32>
  return
}

// -----

func.func @rms_norm_element_type(%x: tensor<2x16x64xf32>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{'mt.rms_norm' op weight has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %y = mt.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<2x16x64xf32>, tensor<64xbf16>
  return
}

// -----

// LayerNorm's bias has the weight's type; the custom form cannot even spell a different one.
func.func @layer_norm_bias_type(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op failed to verify that all of {weight, bias} have same type}}
  %y = "mt.layer_norm"(%x, %w, %b) <{epsilon = 1.0e-5 : f64}> : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<32xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @layer_norm_missing_epsilon(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'mt.layer_norm' op requires attribute 'epsilon'}}
  %y = mt.layer_norm %x, %w, %w : tensor<2x16x64xf32>, tensor<64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.linear
//===----------------------------------------------------------------------===//

func.func @linear_x_rank(%x: tensor<64xf32>, %w: tensor<96x64xf32>) {
  // expected-error @+1 {{'mt.linear' op x must have rank >= 2 ([..., in]), got 'tensor<64xf32>'}}
  %y = mt.linear %x, %w : tensor<64xf32>, tensor<96x64xf32> -> tensor<96xf32>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<2x16x64xf32>, %w: tensor<96x64x1xf32>) {
  // expected-error @+1 {{'mt.linear' op weight must have rank 2 ([out, in]), got 'tensor<96x64x1xf32>'}}
  %y = mt.linear %x, %w : tensor<2x16x64xf32>, tensor<96x64x1xf32> -> tensor<2x16x96xf32>
  return
}

// -----

// The weight is [out, in] as in PyTorch, not [in, out].
func.func @linear_weight_transposed(%x: tensor<2x16x64xf32>, %w: tensor<64x96xf32>) {
  // expected-error @+1 {{'mt.linear' op weight 'tensor<64x96xf32>' must be [out, in] with in = 64 (the last dimension of x)}}
  %y = mt.linear %x, %w : tensor<2x16x64xf32>, tensor<64x96xf32> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_bias_shape(%x: tensor<2x16x64xf32>, %w: tensor<96x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.linear' op bias must have shape [96], got 'tensor<64xf32>'}}
  %y = mt.linear %x, %w, %b : tensor<2x16x64xf32>, tensor<96x64xf32>, tensor<64xf32> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_result_shape(%x: tensor<2x16x64xf32>, %w: tensor<96x64xf32>) {
  // expected-error @+1 {{'mt.linear' op result must have shape [2, 16, 96], got 'tensor<2x16x64xf32>'}}
  %y = mt.linear %x, %w : tensor<2x16x64xf32>, tensor<96x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @linear_weight_element_type(%x: tensor<2x16x64xf32>, %w: tensor<96x64xbf16>) {
  // expected-error @+1 {{'mt.linear' op weight has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %y = mt.linear %x, %w : tensor<2x16x64xf32>, tensor<96x64xbf16> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_result_element_type(%x: tensor<2x16x64xbf16>, %w: tensor<96x64xbf16>) {
  // expected-error @+1 {{'mt.linear' op result has element type 'f32' but x has 'bf16'; insert an mt.cast to mix precisions}}
  %y = mt.linear %x, %w : tensor<2x16x64xbf16>, tensor<96x64xbf16> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_bias_element_type(%x: tensor<2x16x64xbf16>, %w: tensor<96x64xbf16>, %b: tensor<96xf32>) {
  // expected-error @+1 {{'mt.linear' op bias has element type 'f32' but x has 'bf16'; insert an mt.cast to mix precisions}}
  %y = mt.linear %x, %w, %b : tensor<2x16x64xbf16>, tensor<96x64xbf16>, tensor<96xf32> -> tensor<2x16x96xbf16>
  return
}

// -----

// With a bias operand the bias's type must be written too (the parser's wording: one bias operand, zero bias
// types).
func.func @linear_bias_type_missing(%x: tensor<2x16x64xf32>, %w: tensor<96x64xf32>, %b: tensor<96xf32>) {
  // expected-error @+1 {{custom op 'mt.linear' 1 operands present, but expected 0}}
  %y = mt.linear %x, %w, %b : tensor<2x16x64xf32>, tensor<96x64xf32> -> tensor<2x16x96xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.pooler
//===----------------------------------------------------------------------===//

func.func @pooler_x_rank(%x: tensor<2x64xf32>, %w: tensor<64x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.pooler' op x must have rank 3 ([batch, seq, hidden]), got 'tensor<2x64xf32>'}}
  %p = mt.pooler %x, %w, %b : tensor<2x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<2x64xf32>
  return
}

// -----

func.func @pooler_weight_rank(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.pooler' op weight must have rank 2 ([out, hidden]), got 'tensor<64xf32>'}}
  %p = mt.pooler %x, %w, %b : tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<2x64xf32>
  return
}

// -----

func.func @pooler_weight_shape(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.pooler' op weight must have shape [64, 64], got 'tensor<64x32xf32>'}}
  %p = mt.pooler %x, %w, %b : tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<64xf32> -> tensor<2x64xf32>
  return
}

// -----

func.func @pooler_bias_shape(%x: tensor<2x16x64xf32>, %w: tensor<64x64xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{'mt.pooler' op bias must have shape [64], got 'tensor<32xf32>'}}
  %p = mt.pooler %x, %w, %b : tensor<2x16x64xf32>, tensor<64x64xf32>, tensor<32xf32> -> tensor<2x64xf32>
  return
}

// -----

// The pooler keeps only the first token: [batch, out], not [batch, seq, out].
func.func @pooler_result_shape(%x: tensor<2x16x64xf32>, %w: tensor<64x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.pooler' op result must have shape [2, 64], got 'tensor<2x16x64xf32>'}}
  %p = mt.pooler %x, %w, %b : tensor<2x16x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @pooler_element_type(%x: tensor<2x16x64xf32>, %w: tensor<64x64xf32>, %b: tensor<64xbf16>) {
  // expected-error @+1 {{'mt.pooler' op bias has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %p = mt.pooler %x, %w, %b : tensor<2x16x64xf32>, tensor<64x64xf32>, tensor<64xbf16> -> tensor<2x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.linear_gelu (--mt-fuse-elementwise): mt.linear's checks on pre, and the activation has pre's type
//===----------------------------------------------------------------------===//

func.func @linear_gelu_weight_transposed(%x: tensor<2x16x64xf32>, %w: tensor<64x96xf32>) {
  // expected-error @+1 {{'mt.linear_gelu' op weight 'tensor<64x96xf32>' must be [out, in] with in = 64 (the last dimension of x)}}
  %pre, %y = mt.linear_gelu %x, %w : tensor<2x16x64xf32>, tensor<64x96xf32> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_gelu_bias_shape(%x: tensor<2x16x64xf32>, %w: tensor<96x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.linear_gelu' op bias must have shape [96], got 'tensor<64xf32>'}}
  %pre, %y = mt.linear_gelu %x, %w, %b : tensor<2x16x64xf32>, tensor<96x64xf32>, tensor<64xf32> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_gelu_pre_shape(%x: tensor<2x16x64xf32>, %w: tensor<96x64xf32>) {
  // expected-error @+1 {{'mt.linear_gelu' op pre must have shape [2, 16, 96], got 'tensor<2x16x64xf32>'}}
  %pre, %y = mt.linear_gelu %x, %w : tensor<2x16x64xf32>, tensor<96x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @linear_gelu_element_type(%x: tensor<2x16x64xbf16>, %w: tensor<96x64xbf16>) {
  // expected-error @+1 {{'mt.linear_gelu' op pre has element type 'f32' but x has 'bf16'; insert an mt.cast to mix precisions}}
  %pre, %y = mt.linear_gelu %x, %w : tensor<2x16x64xbf16>, tensor<96x64xbf16> -> tensor<2x16x96xf32>
  return
}

// -----

// The custom form gives both results one type; the generic form can differ, and the verifier refuses it.
func.func @linear_gelu_result_types(%x: tensor<2x16x64xf32>, %w: tensor<96x64xf32>) {
  // expected-error @+1 {{'mt.linear_gelu' op failed to verify that all of {pre, result} have same type}}
  %pre, %y = "mt.linear_gelu"(%x, %w) : (tensor<2x16x64xf32>, tensor<96x64xf32>) -> (tensor<2x16x96xf32>, tensor<2x16x96xbf16>)
  return
}
