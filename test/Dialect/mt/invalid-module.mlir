// Errors of the mt.* module attributes (dialects/mt/MtDialect.cpp, MtDialect::verifyOperationAttribute) and of
// the mt.* argument attributes of a model function (MtDialect::verifyRegionArgAttribute).
// A model module may carry mt.model (a string) and mt.num_micro_batches (a positive integer), nothing else; a
// function argument may carry mt.input (a non-empty string naming the input), nothing else.
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{'mt.model' must be a string, got 3 : i64}}
module attributes {mt.model = 3} {
}

// -----

// A unit attribute is not a string either.
// expected-error @+1 {{'mt.model' must be a string, got unit}}
module attributes {mt.model} {
}

// -----

// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got 0 : i64}}
module attributes {mt.num_micro_batches = 0 : i64} {
}

// -----

// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got -4 : i64}}
module attributes {mt.num_micro_batches = -4 : i64} {
}

// -----

// A string that spells a number is not an integer.
// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got "4"}}
module attributes {mt.num_micro_batches = "4"} {
}

// -----

// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got 4.000000e+00 : f64}}
module attributes {mt.num_micro_batches = 4.0 : f64} {
}

// -----

// Only the two attributes above are defined; a typo is caught.
// expected-error @+1 {{unknown module attribute 'mt.num_microbatches'}}
module attributes {mt.num_microbatches = 4 : i64} {
}

// -----

// The attributes describe the whole model: they belong on the module, not on a function...
// expected-error @+1 {{'mt.model' belongs on the model's builtin.module}}
func.func @forward() attributes {mt.model = "gpt"} {
  return
}

// -----

// ...nor on an mt op.
// expected-error @+1 {{'mt.num_micro_batches' belongs on the model's builtin.module}}
mt.param @w : tensor<4x4xf32> init <normal(0.02)> {mt.num_micro_batches = 4 : i64}

// -----

// Any other mt.* attribute off the module gets the same message.
// expected-error @+1 {{'mt.foo' belongs on the model's builtin.module}}
mt.param @w : tensor<4x4xf32> init <normal(0.02)> {mt.foo}

// -----

// A nested module is a builtin.module too, so the attributes are accepted there; the error below comes from
// the outer module's bad attribute.
// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got 0 : i64}}
module attributes {mt.num_micro_batches = 0 : i64} {
  module attributes {mt.model = "bert", mt.num_micro_batches = 2 : i64} {
  }
}

// -----

//===----------------------------------------------------------------------===//
// Argument attributes: mt.input
//===----------------------------------------------------------------------===//

// The runtime feeds each argument by its mt.input name, a non-empty string.
// expected-error @+1 {{'mt.input' of argument #1 must be a non-empty string}}
func.func @forward(%tokens: tensor<2x16xi64> {mt.input = "tokens"}, %labels: tensor<2x16xi64> {mt.input = 1 : i64}) {
  return
}

// -----

// expected-error @+1 {{'mt.input' of argument #0 must be a non-empty string}}
func.func @forward(%tokens: tensor<2x16xi64> {mt.input = ""}) {
  return
}

// -----

// A unit attribute names nothing.
// expected-error @+1 {{'mt.input' of argument #0 must be a non-empty string}}
func.func @forward(%tokens: tensor<2x16xi64> {mt.input}) {
  return
}

// -----

// Declarations are checked as well.
// expected-error @+1 {{'mt.input' of argument #2 must be a non-empty string}}
func.func private @forward(tensor<2x16xi64> {mt.input = "tokens"}, tensor<2x16xi64>, tensor<2x16xf32> {mt.input = ["loss_mask"]})

// -----

// mt.input is the only mt.* argument attribute.
// expected-error @+1 {{unknown argument attribute 'mt.name' on argument #0}}
func.func @forward(%tokens: tensor<2x16xi64> {mt.name = "tokens"}) {
  return
}

// -----

// The micro-batch count is an i64: an unsigned or wider integer would be read wrongly.
// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got 200 : ui8}}
module attributes {mt.num_micro_batches = 200 : ui8} {
}

// -----

// expected-error @+1 {{'mt.num_micro_batches' must be a positive i64, got 18446744073709551617 : i128}}
module attributes {mt.num_micro_batches = 18446744073709551617 : i128} {
}

// -----

// The runtime feeds inputs by name: two arguments cannot share one.
// expected-error @+1 {{arguments #0 and #1 are both named 'tokens'}}
func.func @twice(%a: tensor<2x4xi32> {mt.input = "tokens"}, %b: tensor<2x4xi32> {mt.input = "tokens"}) {
  return
}

// -----

// mt defines no result attributes.
// expected-error @+1 {{unknown result attribute 'mt.output' on result #0}}
func.func @result(%a: tensor<2x4xf32>) -> (tensor<2x4xf32> {mt.output = 1 : i64}) {
  return %a : tensor<2x4xf32>
}
