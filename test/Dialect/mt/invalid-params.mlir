// Errors of mt.param, mt.param_ref and the #mt.init attribute (dialects/mt/MtOps.cpp, ParamOp::verify and
// ParamRefOp::verifySymbolUses; dialects/mt/MtAttrs.cpp, InitAttr::parse and InitAttr::verify).
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// mt.param: ParamOp::verify
//===----------------------------------------------------------------------===//

// The memory planner needs every parameter's size.
// expected-error @+1 {{'mt.param' op parameter 'w' needs a static shape, got 'tensor<?x64xf32>'}}
mt.param @w : tensor<?x64xf32> init <normal(0.02)>

// -----

// expected-error @+1 {{'mt.param' op parameter 'embedding.word_embeddings.weight' must have a floating-point element type, got 'i32'}}
mt.param @"embedding.word_embeddings.weight" : tensor<1024x64xi32> init <normal(0.02)>

// -----

// expected-error @+1 {{'mt.param' op parameter 'b' has no elements: 'tensor<0xf32>'}}
mt.param @b : tensor<0xf32> init <zeros>

// -----

// The declared type is a ranked tensor (ODS constraint on the `type` attribute).
// expected-error @+1 {{'mt.param' op attribute 'type' failed to satisfy constraint: type attribute of ranked tensor of any type values}}
mt.param @w : tensor<*xf32> init <normal(0.02)>

// -----

// expected-error @+1 {{'mt.param' op attribute 'type' failed to satisfy constraint: type attribute of ranked tensor of any type values}}
mt.param @w : f32 init <normal(0.02)>

// -----

// In the generic form the initialisation is a required #mt.init attribute...
// expected-error @+1 {{'mt.param' op requires attribute 'init'}}
"mt.param"() <{sym_name = "w", type = tensor<4x4xf32>}> : () -> ()

// -----

// ...and a bare standard deviation is not one.
// expected-error @+1 {{Invalid attribute `init` in property conversion: 2.000000e-02 : f64}}
"mt.param"() <{init = 0.02 : f64, sym_name = "w", type = tensor<4x4xf32>}> : () -> ()

// -----

// Parameters live directly in the model's builtin.module, not inside a function.
func.func @param_in_function() {
  // expected-error @+1 {{'mt.param' op expects parent op 'builtin.module'}}
  mt.param @w : tensor<4x4xf32> init <normal(0.02)>
  return
}

// -----

// Two parameters of one name are one symbol defined twice.
mt.param @w : tensor<4x4xf32> init <normal(0.02)>
// expected-error @+2 {{redefinition of symbol named 'w'}}
// expected-note @-2 {{see existing symbol definition here}}
mt.param @w : tensor<4x4xf32> init <zeros>

// -----

// The init clause starts with the keyword `init`.
// expected-error @+1 {{expected 'init'}}
mt.param @w : tensor<4x4xf32> <normal(0.02)>

// -----

//===----------------------------------------------------------------------===//
// mt.param_ref: ParamRefOp::verifySymbolUses
//===----------------------------------------------------------------------===//

func.func @undeclared() -> tensor<4x4xf32> {
  // expected-error @+1 {{'mt.param_ref' op refers to @missing, which is not declared by an mt.param}}
  %w = mt.param_ref @missing : tensor<4x4xf32>
  return %w : tensor<4x4xf32>
}

// -----

// A symbol that is not a parameter, here a function.
func.func @not_a_param() {
  return
}

func.func @wrong_kind_of_symbol() -> tensor<4x4xf32> {
  // expected-error @+1 {{'mt.param_ref' op refers to @not_a_param, which is not declared by an mt.param}}
  %w = mt.param_ref @not_a_param : tensor<4x4xf32>
  return %w : tensor<4x4xf32>
}

// -----

mt.param @w : tensor<64x256xf32> init <scaled_normal(0.02, layers = 12)>

// The reference reads the parameter transposed: a mismatch in shape.
func.func @shape_mismatch() -> tensor<256x64xf32> {
  // expected-error @+1 {{'mt.param_ref' op has type 'tensor<256x64xf32>' but parameter @w is declared as 'tensor<64x256xf32>'}}
  %w = mt.param_ref @w : tensor<256x64xf32>
  return %w : tensor<256x64xf32>
}

// -----

mt.param @w : tensor<64xf32> init <ones>

// Reading an f32 parameter as bf16 needs an mt.cast.
func.func @element_type_mismatch() -> tensor<64xbf16> {
  // expected-error @+1 {{'mt.param_ref' op has type 'tensor<64xbf16>' but parameter @w is declared as 'tensor<64xf32>'}}
  %w = mt.param_ref @w : tensor<64xbf16>
  return %w : tensor<64xbf16>
}

// -----

mt.param @w : tensor<4x4xf32> init <normal(0.02)>

// The static-shape trait applies to param_ref's result before the symbol is even looked up.
func.func @dynamic_ref() -> tensor<?x4xf32> {
  // expected-error @+1 {{'mt.param_ref' op needs static shapes, but result #0 has type 'tensor<?x4xf32>'}}
  %w = mt.param_ref @w : tensor<?x4xf32>
  return %w : tensor<?x4xf32>
}

// -----

// param_ref yields floating-point tensors only (ODS constraint).
func.func @integer_ref() -> tensor<4xi32> {
  // expected-error @+1 {{'mt.param_ref' op result #0 must be ranked tensor of floating-point values, but got 'tensor<4xi32>'}}
  %w = mt.param_ref @w : tensor<4xi32>
  return %w : tensor<4xi32>
}

// -----

// The parameter is named by a flat symbol reference; a nested one is rejected by the parser...
func.func @nested_ref() -> tensor<4xf32> {
  // expected-error @+1 {{custom op 'mt.param_ref' invalid kind of attribute specified}}
  %w = mt.param_ref @outer::@w : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

// ...and in the generic form by the conversion of the attribute to the op's properties.
func.func @nested_ref_generic() -> tensor<4xf32> {
  // expected-error @+1 {{invalid properties {name = @outer::@w} for op mt.param_ref: Invalid attribute `name` in property conversion: @outer::@w}}
  %w = "mt.param_ref"() <{name = @outer::@w}> : () -> tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

//===----------------------------------------------------------------------===//
// #mt.init: InitAttr::parse
//===----------------------------------------------------------------------===//

// expected-error @+1 {{unknown init 'uniform'; expected normal, scaled_normal, zeros or ones}}
mt.param @w : tensor<4x4xf32> init <uniform(0.02)>

// -----

// Init kinds are lower case.
// expected-error @+1 {{unknown init 'Normal'; expected normal, scaled_normal, zeros or ones}}
mt.param @w : tensor<4x4xf32> init <Normal(0.02)>

// -----

// The kind is a keyword, not a number.
// expected-error @+1 {{expected valid keyword}}
mt.param @w : tensor<4x4xf32> init <0.02>

// -----

// expected-error @+1 {{expected '<'}}
mt.param @w : tensor<4x4xf32> init normal(0.02)

// -----

// expected-error @+1 {{expected '('}}
mt.param @w : tensor<4x4xf32> init <normal>

// -----

// expected-error @+1 {{expected floating point literal}}
mt.param @w : tensor<4x4xf32> init <normal()>

// -----

// An integer standard deviation is not a float literal (write 1.0).
// expected-error @+2 {{unexpected decimal integer literal for a floating point value}}
// expected-note @+1 {{add a trailing dot to make the literal a float}}
mt.param @w : tensor<4x4xf32> init <normal(1)>

// -----

// expected-error @+1 {{expected ')'}}
mt.param @w : tensor<4x4xf32> init <normal(0.02>

// -----

// expected-error @+1 {{expected '>'}}
mt.param @w : tensor<4x4xf32> init <normal(0.02)

// -----

// normal takes no layer count.
// expected-error @+1 {{expected ')'}}
mt.param @w : tensor<4x4xf32> init <normal(0.02, layers = 12)>

// -----

// scaled_normal needs its layer count...
// expected-error @+1 {{expected ','}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(0.02)>

// -----

// ...spelled `layers`...
// expected-error @+1 {{expected 'layers'}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(0.02, num_layers = 12)>

// -----

// ...followed by `=`...
// expected-error @+1 {{expected '='}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(0.02, layers 12)>

// -----

// ...and an integer.
// expected-error @+1 {{expected integer value}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(0.02, layers = 1.5)>

// -----

// zeros and ones take no arguments.
// expected-error @+1 {{expected '>'}}
mt.param @b : tensor<64xf32> init <zeros(0.0)>

// -----

// expected-error @+1 {{expected '>'}}
mt.param @g : tensor<64xf32> init <ones()>

// -----

// The same parser serves the attribute outside mt.param.
// expected-error @+1 {{unknown init 'xavier'}}
func.func @f() attributes {init = #mt.init<xavier>} {
  return
}

// -----

//===----------------------------------------------------------------------===//
// #mt.init: InitAttr::verify
//===----------------------------------------------------------------------===//

// expected-error @+1 {{normal init needs a positive, finite standard deviation, got 0.000000e+00}}
mt.param @w : tensor<4x4xf32> init <normal(0.0)>

// -----

// expected-error @+1 {{normal init needs a positive, finite standard deviation, got -2.000000e-02}}
mt.param @w : tensor<4x4xf32> init <normal(-0.02)>

// -----

// Infinity, written as its IEEE-754 bit pattern.
// expected-error @+1 {{normal init needs a positive, finite standard deviation, got INF}}
mt.param @w : tensor<4x4xf32> init <normal(0x7FF0000000000000)>

// -----

// NaN.
// expected-error @+1 {{normal init needs a positive, finite standard deviation, got nan}}
mt.param @w : tensor<4x4xf32> init <normal(0x7FF8000000000000)>

// -----

// expected-error @+1 {{scaled_normal init needs a positive, finite standard deviation, got -2.000000e-02}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(-0.02, layers = 12)>

// -----

// expected-error @+1 {{scaled_normal init needs layers > 0, got 0}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(0.02, layers = 0)>

// -----

// expected-error @+1 {{scaled_normal init needs layers > 0, got -12}}
mt.param @w : tensor<4x4xf32> init <scaled_normal(0.02, layers = -12)>

// Not reachable from text: "zeros/ones init takes no standard deviation" and "only scaled_normal init takes a
// layer count". The parser never reads a standard deviation for zeros/ones nor a layer count for anything but
// scaled_normal (the cases above that try get a syntax error), so these checks guard C++ builders only.
