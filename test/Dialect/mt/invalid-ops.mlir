// Errors of the activations, dropout, casts and the loss (dialects/mt/MtOps.cpp: SwigluOp, DropoutOp, CastOp,
// CrossEntropyOp; the ODS constraints of GeluOp and AddOp), of the static-shape trait shared by every op but
// mt.param (verifyStaticShapes), and of the parser: unknown ops and malformed syntax.
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// mt.gelu and mt.add (ODS constraints only)
//===----------------------------------------------------------------------===//

func.func @gelu_unknown_approximation(%x: tensor<2x16x256xf32>) {
  // expected-error @+2 {{expected ::mlir::mt::GeluApproximation to be one of: none, tanh}}
  // expected-error @+1 {{failed to parse Mt_GeluApproximationAttr parameter 'value' which is to be a `::mlir::mt::GeluApproximation`}}
  %y = mt.gelu %x {approximation = #mt<gelu_approximation erf>} : tensor<2x16x256xf32>
  return
}

// -----

// The approximation is an #mt<gelu_approximation ...> attribute, not a string.
func.func @gelu_string_approximation(%x: tensor<2x16x256xf32>) {
  // expected-error @+1 {{'mt.gelu' op attribute 'approximation' failed to satisfy constraint: how GeLU is evaluated}}
  %y = mt.gelu %x {approximation = "none"} : tensor<2x16x256xf32>
  return
}

// -----

func.func @gelu_result_type(%x: tensor<2x16x256xf32>) {
  // expected-error @+1 {{'mt.gelu' op failed to verify that all of {x, result} have same type}}
  %y = "mt.gelu"(%x) : (tensor<2x16x256xf32>) -> tensor<2x16x256xbf16>
  return
}

// -----

// Residual connections add tensors of one type: an f32 residual and a bf16 branch need an mt.cast.
func.func @add_element_type(%a: tensor<2x16x64xf32>, %b: tensor<2x16x64xbf16>) {
  // expected-error @+1 {{'mt.add' op failed to verify that all of {lhs, rhs, result} have same type}}
  %y = "mt.add"(%a, %b) : (tensor<2x16x64xf32>, tensor<2x16x64xbf16>) -> tensor<2x16x64xf32>
  return
}

// -----

// No broadcasting: a bias is added by mt.linear, not by mt.add.
func.func @add_broadcast(%a: tensor<2x16x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'mt.add' op failed to verify that all of {lhs, rhs, result} have same type}}
  %y = "mt.add"(%a, %b) : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

// Float tensors only.
func.func @add_integers(%a: tensor<2x16xi64>) {
  // expected-error @+1 {{'mt.add' op operand #0 must be ranked tensor of floating-point values, but got 'tensor<2x16xi64>'}}
  %y = mt.add %a, %a : tensor<2x16xi64>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.swiglu
//===----------------------------------------------------------------------===//

func.func @swiglu_odd(%x: tensor<2x16x255xf32>) {
  // expected-error @+1 {{'mt.swiglu' op x must have an even last dimension ([..., 2*ffn]), got 'tensor<2x16x255xf32>'}}
  %y = mt.swiglu %x : tensor<2x16x255xf32> -> tensor<2x16x127xf32>
  return
}

// -----

func.func @swiglu_scalar(%x: tensor<f32>) {
  // expected-error @+1 {{'mt.swiglu' op x must have an even last dimension ([..., 2*ffn]), got 'tensor<f32>'}}
  %y = mt.swiglu %x : tensor<f32> -> tensor<f32>
  return
}

// -----

// SwiGLU halves the last dimension: 512 -> 256.
func.func @swiglu_result_shape(%x: tensor<2x16x512xf32>) {
  // expected-error @+1 {{'mt.swiglu' op result must have shape [2, 16, 256], got 'tensor<2x16x512xf32>'}}
  %y = mt.swiglu %x : tensor<2x16x512xf32> -> tensor<2x16x512xf32>
  return
}

// -----

func.func @swiglu_element_type(%x: tensor<2x16x512xf32>) {
  // expected-error @+1 {{'mt.swiglu' op result has element type 'bf16' but x has 'f32'; insert an mt.cast to mix precisions}}
  %y = mt.swiglu %x : tensor<2x16x512xf32> -> tensor<2x16x256xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.dropout
//===----------------------------------------------------------------------===//

func.func @dropout_one(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.dropout' op rate must be in [0, 1), got 1}}
  %y = mt.dropout %x {rate = 1.0 : f64} : tensor<2x16x64xf32>
  return
}

// -----

func.func @dropout_negative(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.dropout' op rate must be in [0, 1), got -1.000000e-01}}
  %y = mt.dropout %x {rate = -0.1 : f64} : tensor<2x16x64xf32>
  return
}

// -----

// mt.dropout_add (made by --mt-fuse-elementwise) checks its rate as mt.dropout does, and its residual's type.
func.func @dropout_add_rate(%x: tensor<2x16x64xf32>, %r: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.dropout_add' op rate must be in [0, 1), got 1}}
  %y = mt.dropout_add %x, %r {rate = 1.0 : f64} : tensor<2x16x64xf32>
  return
}

// -----

func.func @dropout_add_residual(%x: tensor<2x16x64xf32>, %r: tensor<2x16x64xbf16>) {
  // expected-error @+1 {{'mt.dropout_add' op failed to verify that all of {x, residual, result} have same type}}
  %y = "mt.dropout_add"(%x, %r) {rate = 0.1 : f64} : (tensor<2x16x64xf32>, tensor<2x16x64xbf16>) -> tensor<2x16x64xf32>
  return
}

// -----

// NaN, written as its IEEE-754 bit pattern.
func.func @dropout_nan(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.dropout' op rate must be in [0, 1), got nan}}
  %y = mt.dropout %x {rate = 0x7FF8000000000000 : f64} : tensor<2x16x64xf32>
  return
}

// -----

// The rate is required...
func.func @dropout_missing_rate(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.dropout' op requires attribute 'rate'}}
  %y = mt.dropout %x : tensor<2x16x64xf32>
  return
}

// -----

// ...and is a probability as an f64, not an integer percentage.
func.func @dropout_integer_rate(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.dropout' op attribute 'rate' failed to satisfy constraint: 64-bit float attribute}}
  %y = mt.dropout %x {rate = 10 : i64} : tensor<2x16x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.cast
//===----------------------------------------------------------------------===//

func.func @cast_shape(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.cast' op result must have shape [2, 16, 64], got 'tensor<32x64xbf16>'}}
  %y = mt.cast %x : tensor<2x16x64xf32> to tensor<32x64xbf16>
  return
}

// -----

// mt.cast converts between floating-point types only.
func.func @cast_to_integer(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.cast' op result #0 must be ranked tensor of floating-point values, but got 'tensor<2x16x64xi32>'}}
  %y = mt.cast %x : tensor<2x16x64xf32> to tensor<2x16x64xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// mt.cross_entropy
//===----------------------------------------------------------------------===//

func.func @loss_logits_rank(%logits: tensor<1024xf32>, %labels: tensor<i64>, %mask: tensor<f32>) {
  // expected-error @+1 {{'mt.cross_entropy' op logits must have rank >= 2 ([..., vocab]), got 'tensor<1024xf32>'}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<1024xf32>, tensor<i64>, tensor<f32> -> tensor<f32>
  return
}

// -----

// Labels are [...] without vocab: one class index per token.
func.func @loss_labels_shape(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16x1024xi64>, %mask: tensor<2x16xf32>) {
  // expected-error @+1 {{'mt.cross_entropy' op labels must have shape [2, 16], got 'tensor<2x16x1024xi64>'}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<2x16x1024xf32>, tensor<2x16x1024xi64>, tensor<2x16xf32> -> tensor<f32>
  return
}

// -----

func.func @loss_mask_shape(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16xi64>, %mask: tensor<16xf32>) {
  // expected-error @+1 {{'mt.cross_entropy' op loss_mask must have shape [2, 16], got 'tensor<16xf32>'}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<2x16x1024xf32>, tensor<2x16xi64>, tensor<16xf32> -> tensor<f32>
  return
}

// -----

// The loss mask is optional, but when it is there its type is written too.
func.func @loss_mask_type_missing(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16xi64>, %mask: tensor<2x16xf32>) {
  // expected-error @+1 {{custom op 'mt.cross_entropy' 1 operands present, but expected 0}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<2x16x1024xf32>, tensor<2x16xi64> -> tensor<f32>
  return
}

// -----

// The loss mask is a float weight per token (ODS constraint).
func.func @loss_integer_mask(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16xi64>, %mask: tensor<2x16xi1>) {
  // expected-error @+1 {{'mt.cross_entropy' op operand #2 must be ranked tensor of floating-point values, but got 'tensor<2x16xi1>'}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<2x16x1024xf32>, tensor<2x16xi64>, tensor<2x16xi1> -> tensor<f32>
  return
}

// -----

// Labels are integers (ODS constraint).
func.func @loss_float_labels(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16xf32>, %mask: tensor<2x16xf32>) {
  // expected-error @+1 {{'mt.cross_entropy' op operand #1 must be ranked tensor of signless integer values, but got 'tensor<2x16xf32>'}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<2x16x1024xf32>, tensor<2x16xf32>, tensor<2x16xf32> -> tensor<f32>
  return
}

// -----

// The loss is reduced to a scalar (0-D) tensor, not per token.
func.func @loss_per_token(%logits: tensor<2x16x1024xf32>, %labels: tensor<2x16xi64>, %mask: tensor<2x16xf32>) {
  // expected-error @+1 {{'mt.cross_entropy' op result #0 must be 0D tensor of floating-point values, but got 'tensor<2x16xf32>'}}
  %l = mt.cross_entropy %logits, %labels, %mask : tensor<2x16x1024xf32>, tensor<2x16xi64>, tensor<2x16xf32> -> tensor<2x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Static shapes (the MtStaticShapes trait, verifyStaticShapes)
//===----------------------------------------------------------------------===//

// Every tensor operand and result of an mt op has a static shape; the trait reports the first dynamic one.
func.func @dynamic_operand(%x: tensor<?x16x64xf32>) {
  // expected-error @+1 {{'mt.gelu' op needs static shapes, but operand #0 has type 'tensor<?x16x64xf32>'}}
  %y = mt.gelu %x : tensor<?x16x64xf32>
  return
}

// -----

func.func @dynamic_second_operand(%x: tensor<2x16x64xf32>, %w: tensor<?x64xf32>) {
  // expected-error @+1 {{'mt.linear' op needs static shapes, but operand #1 has type 'tensor<?x64xf32>'}}
  %y = mt.linear %x, %w : tensor<2x16x64xf32>, tensor<?x64xf32> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @dynamic_result(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{'mt.cast' op needs static shapes, but result #0 has type 'tensor<2x?x64xbf16>'}}
  %y = mt.cast %x : tensor<2x16x64xf32> to tensor<2x?x64xbf16>
  return
}

// -----

// The trait runs before the op's own verifier, which would otherwise read the dynamic sizes.
func.func @dynamic_attention(%q: tensor<2x?x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+1 {{'mt.attention' op needs static shapes, but operand #0 has type 'tensor<2x?x8x8xf32>'}}
  %o = mt.attention causal %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x?x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// Integer operands too.
func.func @dynamic_ids(%ids: tensor<2x?xi64>, %table: tensor<1024x64xf32>) {
  // expected-error @+1 {{'mt.embedding' op needs static shapes, but operand #0 has type 'tensor<2x?xi64>'}}
  %e = mt.embedding %ids, %table : tensor<2x?xi64>, tensor<1024x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

// Unranked tensors are not even parsed by the custom form, which reads ranked tensor types...
func.func @unranked(%x: tensor<*xf32>) {
  // expected-error @+1 {{custom op 'mt.dropout' invalid kind of type specified}}
  %y = mt.dropout %x {rate = 0.1 : f64} : tensor<*xf32>
  return
}

// -----

// ...and fail the ranked-tensor constraint in the generic form.
func.func @unranked_generic(%x: tensor<*xf32>) {
  // expected-error @+1 {{'mt.dropout' op operand #0 must be ranked tensor of floating-point values, but got 'tensor<*xf32>'}}
  %y = "mt.dropout"(%x) <{rate = 0.1 : f64}> : (tensor<*xf32>) -> tensor<*xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Unknown ops
//===----------------------------------------------------------------------===//

func.func @unknown_custom_op(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{custom op 'mt.foo' is unknown}}
  %y = mt.foo %x : tensor<2x16x64xf32>
  return
}

// -----

// The mt dialect allows no unregistered ops, not even in the generic form.
func.func @unknown_generic_op(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{unregistered operation 'mt.foo' found in dialect ('mt') that does not allow unknown operations}}
  %y = "mt.foo"(%x) : (tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

// Ops of dialects megatron-opt does not load are rejected as well.
func.func @unknown_dialect(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{operation being parsed with an unregistered dialect}}
  %y = "torch.gelu"(%x) : (tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Malformed syntax
//===----------------------------------------------------------------------===//

// mt.embedding writes its result type after `->`.
func.func @missing_arrow(%ids: tensor<2x16xi64>, %table: tensor<1024x64xf32>) {
  // expected-error @+1 {{expected '->'}}
  %e = mt.embedding %ids, %table : tensor<2x16xi64>, tensor<1024x64xf32>
  return
}

// -----

func.func @missing_type(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{expected ':'}}
  %y = mt.gelu %x
  return
}

// -----

func.func @too_many_operands(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{expected ':'}}
  %y = mt.gelu %x, %x : tensor<2x16x64xf32>
  return
}

// -----

func.func @undefined_value() {
  // expected-error @+1 {{use of undeclared SSA value name}}
  %y = mt.gelu %x : tensor<2x16x64xf32>
  return
}

// -----

// An operand whose written type differs from its definition's.
func.func @operand_type_mismatch(%x: tensor<2x16x64xf32>) {
  // expected-note @-1 {{prior use here}}
  // expected-error @+1 {{use of value '%x' expects different type than prior uses: 'tensor<2x16x64xbf16>' vs 'tensor<2x16x64xf32>'}}
  %y = mt.gelu %x : tensor<2x16x64xbf16>
  return
}

// -----

// The mask kind of mt.attention is a bare keyword, not a string.
func.func @quoted_mask_kind(%q: tensor<2x16x8x8xf32>, %k: tensor<2x16x2x8xf32>) {
  // expected-error @+2 {{expected valid keyword}}
  // expected-error @+1 {{failed to parse Mt_AttnMaskTypeAttr parameter 'value' which is to be a `::mlir::mt::AttnMaskType`}}
  %o = mt.attention "causal" %q, %k, %k {num_heads = 8 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327379 : f64}
      : tensor<2x16x8x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  return
}

// -----

// An unterminated tensor type.
func.func @unterminated_type(%x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{expected '>'}}
  %y = mt.dropout %x {rate = 0.1 : f64} : tensor<2x16x64xf32
  return
}

// -----

func.func @cast_to_itself(%x: tensor<4xf32>) {
  // expected-error @+1 {{'mt.cast' op casts 'f32' to itself}}
  %y = mt.cast %x : tensor<4xf32> to tensor<4xf32>
  return
}

// -----

// Whatever the logits' type, the loss and its mask are f32.
func.func @cross_entropy_bf16_mask(%l: tensor<2x4x16xbf16>, %t: tensor<2x4xi32>, %m: tensor<2x4xbf16>) {
  // expected-error @+1 {{'mt.cross_entropy' op loss_mask must be f32 or f64, got 'bf16'}}
  %loss = mt.cross_entropy %l, %t, %m : tensor<2x4x16xbf16>, tensor<2x4xi32>, tensor<2x4xbf16> -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_bf16_loss(%l: tensor<2x4x16xbf16>, %t: tensor<2x4xi32>) {
  // expected-error @+1 {{'mt.cross_entropy' op the loss must be f32 or f64, got 'bf16'}}
  %loss = mt.cross_entropy %l, %t : tensor<2x4x16xbf16>, tensor<2x4xi32> -> tensor<bf16>
  return
}
