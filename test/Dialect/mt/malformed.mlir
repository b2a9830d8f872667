// A file megatron-opt cannot parse: it exits with status 1 (not 0, and not a crash), prints nothing on stdout,
// and reports the error on stderr as FILE:LINE:COL, followed by the offending line and a caret under the column.
//
// RUN: not megatron-opt %s 2>&1 | FileCheck %s
// RUN: megatron-opt %s > /dev/null 2>&1; test $? -eq 1
// RUN: not megatron-opt %s 2> /dev/null | count 0

func.func @embed(%ids: tensor<2x16xi64>, %table: tensor<1024x64xf32>) -> tensor<2x16x64xf32> {
  // The result type follows `->`, not `=>`; the error points at the `=>` (column 73).
  // CHECK: malformed.mlir:[[@LINE+3]]:73: error: expected '->'
  // CHECK-NEXT: {{^}}  %e = mt.embedding %ids, %table : tensor<2x16xi64>, tensor<1024x64xf32> => tensor<2x16x64xf32>
  // CHECK-NEXT: {{^ *\^$}}
  %e = mt.embedding %ids, %table : tensor<2x16xi64>, tensor<1024x64xf32> => tensor<2x16x64xf32>
  return %e : tensor<2x16x64xf32>
}

// Parsing stops at the first syntax error: nothing after it is reported.
// CHECK-NOT: error:
func.func @later(%x: tensor<2x16x64xf32>) {
  %y = mt.gelu %x : tensor<2x16x64xf32> garbage
  return
}
