// megatron-opt -o FILE writes FILE only when the run succeeds: the result goes to a temporary file in FILE's
// directory and is renamed into place. An input that fails to verify (this file) or to parse (malformed.mlir)
// leaves an existing FILE as it was, and leaves no temporary behind.
//
// A verifier error:
// RUN: rm -rf %t.dir && mkdir %t.dir
// RUN: echo keep > %t.dir/out.mlir
// RUN: not megatron-opt %s -o %t.dir/out.mlir
// RUN: FileCheck --check-prefix=KEPT --input-file=%t.dir/out.mlir %s
//
// A syntax error:
// RUN: not megatron-opt %S/malformed.mlir -o %t.dir/out.mlir
// RUN: FileCheck --check-prefix=KEPT --input-file=%t.dir/out.mlir %s
//
// Only out.mlir is in the directory: no temporary file was left behind.
// RUN: ls %t.dir | count 1
//
// The same with -o naming the lit temporary itself, as the simplest use:
// RUN: echo keep > %t
// RUN: not megatron-opt %s -o %t
// RUN: FileCheck --check-prefix=KEPT --input-file=%t %s
//
// And a valid input does replace the file (here with the module of roundtrip.mlir).
// RUN: megatron-opt %S/roundtrip.mlir -o %t.dir/out.mlir
// RUN: FileCheck --check-prefix=REPLACED --input-file=%t.dir/out.mlir %s
// RUN: ls %t.dir | count 1

// KEPT: {{^keep$}}
// KEPT-NOT: {{.}}

// REPLACED-NOT: keep
// REPLACED: module attributes {mt.model = "gpt", mt.num_micro_batches = 8 : i64}
// REPLACED: mt.param @embedding.word_embeddings.weight

mt.param @w : tensor<4x4xf32> init <normal(0.02)>

func.func @f() -> tensor<4x8xf32> {
  %w = mt.param_ref @w : tensor<4x8xf32>
  return %w : tensor<4x8xf32>
}
