// The collectives, #mt.shard and @finalize_grads of a sharded module print and parse back unchanged.
// RUN: megatron-opt %s | megatron-opt | FileCheck %s
// RUN: megatron-opt %s -mlir-print-op-generic | megatron-opt | FileCheck %s

// CHECK: module attributes {mt.sequence_parallel, mt.tensor_parallel = 2 : i64}
module attributes {mt.tensor_parallel = 2 : i64, mt.sequence_parallel} {
  // CHECK: mt.param @qkv : tensor<6x4xf32> init <normal(0.02)> shard <dim 0 of 12: [0+2, 4+4], [2+2, 4+4]>
  mt.param @qkv : tensor<6x4xf32> init <normal(0.02)> shard <dim 0 of 12: [0+2, 4+4], [2+2, 4+4]>
  // CHECK: mt.param @norm : tensor<4xf32> init <ones>{{$}}
  mt.param @norm : tensor<4xf32> init <ones>
  // CHECK-LABEL: func.func @forward
  func.func @forward(%x: tensor<2x4x4xf32>, %b: tensor<4xf32>) -> tensor<2x4x4xf32> {
    // CHECK: mt.all_gather %{{.*}} along 1 over "tp" : tensor<2x4x4xf32> -> tensor<2x8x4xf32>
    %0 = mt.all_gather %x along 1 over "tp" : tensor<2x4x4xf32> -> tensor<2x8x4xf32>
    // CHECK: mt.all_gather %{{.*}} along 1 over "tp" {replicated_grad} : tensor<2x4x4xf32> -> tensor<2x8x4xf32>
    %1 = mt.all_gather %x along 1 over "tp" {replicated_grad} : tensor<2x4x4xf32> -> tensor<2x8x4xf32>
    // CHECK: mt.copy_to_group %{{.*}} over "tp" : tensor<2x8x4xf32>
    %2 = mt.copy_to_group %0 over "tp" : tensor<2x8x4xf32>
    // CHECK: mt.all_reduce %{{.*}} over "tp" : tensor<2x8x4xf32>
    %3 = mt.all_reduce %2 over "tp" : tensor<2x8x4xf32>
    // CHECK: mt.reduce_scatter %{{.*}} along 1 over "tp" : tensor<2x8x4xf32> -> tensor<2x4x4xf32>
    %4 = mt.reduce_scatter %3 along 1 over "tp" : tensor<2x8x4xf32> -> tensor<2x4x4xf32>
    // CHECK: mt.shard_slice %{{.*}} along 2 over "tp" : tensor<2x8x4xf32> -> tensor<2x8x2xf32>
    %5 = mt.shard_slice %1 along 2 over "tp" : tensor<2x8x4xf32> -> tensor<2x8x2xf32>
    // CHECK: mt.add_bias %{{.*}}, %{{.*}} : tensor<2x4x4xf32>, tensor<4xf32>
    %6 = mt.add_bias %4, %b : tensor<2x4x4xf32>, tensor<4xf32>
    return %6 : tensor<2x4x4xf32>
  }
  // CHECK-LABEL: func.func @finalize_grads
  func.func @finalize_grads() {
    // CHECK-NEXT: mt.all_reduce_grads [@norm] over "tp"
    mt.all_reduce_grads [@norm] over "tp"
    // CHECK-NEXT: mt.all_reduce_grads [@qkv] over "tp" {group_size = 2 : i64, rows = array<i64: 2, 4>}
    mt.all_reduce_grads [@qkv] over "tp" {group_size = 2 : i64, rows = array<i64: 2, 4>}
    return
  }
}

// Pipeline messages and the split of a chunk's training step.
// CHECK-LABEL: module attributes {mt.pipeline_parallel = 2 : i64, mt.virtual_pipeline = 2 : i64}
module attributes {mt.pipeline_parallel = 2 : i64, mt.virtual_pipeline = 2 : i64} {
  func.func @train_step_chunk1(%x: tensor<2x4xf32>) {
    // CHECK: %[[H:.*]] = mt.recv from chunk 0 index 0 : tensor<2x4xf32>
    %h = mt.recv from chunk 0 index 0 : tensor<2x4xf32>
    // CHECK-NEXT: mt.send %[[H]] to chunk 2 index 0 : tensor<2x4xf32>
    mt.send %h to chunk 2 index 0 : tensor<2x4xf32>
    // CHECK-NEXT: mt.backward_start
    mt.backward_start
    // CHECK-NEXT: %[[G:.*]] = mt.recv from chunk 2 index 0 {grad} : tensor<2x4xf32>
    %g = mt.recv from chunk 2 index 0 {grad} : tensor<2x4xf32>
    // CHECK-NEXT: mt.send %[[G]] to chunk 0 index 0 {grad} : tensor<2x4xf32>
    mt.send %g to chunk 0 index 0 {grad} : tensor<2x4xf32>
    return
  }
}
