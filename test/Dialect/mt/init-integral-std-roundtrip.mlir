// KNOWN BUG (expected to fail until fixed): an #mt.init standard deviation with an integral value does not
// survive a round trip. InitAttr::print (dialects/mt/MtAttrs.cpp) writes APFloat::toString's shortest form,
// which for 1.0 is "1" with no decimal point; InitAttr::parse reads it with AsmParser::parseFloat, which
// rejects a decimal integer literal ("unexpected decimal integer literal for a floating point value").
// So `megatron-opt` prints `init <normal(1)>` and cannot read its own output back.
//
// When the printer (or the parser) is fixed this test passes unexpectedly: delete the XFAIL line then.
// XFAIL: *
//
// RUN: megatron-opt %s | megatron-opt | FileCheck %s

// CHECK: mt.param @w : tensor<4x4xf32> init <normal(1
mt.param @w : tensor<4x4xf32> init <normal(1.0)>
// CHECK: mt.param @v : tensor<4x4xf32> init <scaled_normal(2
mt.param @v : tensor<4x4xf32> init <scaled_normal(2.0, layers = 12)>
