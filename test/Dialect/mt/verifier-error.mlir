// A file that parses but does not verify: megatron-opt exits with status 1, prints nothing on stdout, and
// reports the failing op as FILE:LINE:COL with the op's generic form in a note.
//
// RUN: not megatron-opt %s 2>&1 | FileCheck %s
// RUN: megatron-opt %s > /dev/null 2>&1; test $? -eq 1
// RUN: not megatron-opt %s 2> /dev/null | count 0

mt.param @"decoder.layers.0.self_attention.linear_qkv.weight" : tensor<96x64xf32> init <normal(0.02)>

func.func @qkv(%x: tensor<2x16x64xf32>) -> tensor<2x16x64xf32> {
  %w = mt.param_ref @"decoder.layers.0.self_attention.linear_qkv.weight" : tensor<96x64xf32>
  // The result should be [2, 16, 96]. The error points at the op's result (column 8).
  // CHECK: verifier-error.mlir:[[@LINE+2]]:8: error: 'mt.linear' op result must have shape [2, 16, 96], got 'tensor<2x16x64xf32>'
  // CHECK: verifier-error.mlir:[[@LINE+1]]:8: note: see current operation: %1 = "mt.linear"
  %y = mt.linear %x, %w : tensor<2x16x64xf32>, tensor<96x64xf32> -> tensor<2x16x64xf32>
  return %y : tensor<2x16x64xf32>
}
