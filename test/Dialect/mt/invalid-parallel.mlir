// Errors of the collectives, #mt.shard and the sharded-module attributes (dialects/mt/MtParallelOps.cpp,
// MtAttrs.cpp ShardAttr, MtOps.cpp ParamOp::verify, MtDialect.cpp).
// RUN: megatron-opt %s -split-input-file -verify-diagnostics

// A collective's block sizes follow from its group's size, which the module declares.
func.func @no_group_size(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'mt.all_reduce' op needs the module's 'mt.tensor_parallel' to know the size of group "tp"}}
  %0 = mt.all_reduce %x over "tp" : tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  func.func @unknown_group(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    // expected-error @+1 {{'mt.copy_to_group' op unknown group "pp"; the groups are: "tp" (tensor parallel), "dp" (data parallel)}}
    %0 = mt.copy_to_group %x over "pp" : tensor<2x4xf32>
    return %0 : tensor<2x4xf32>
  }
}

// -----

module attributes {mt.tensor_parallel = 4 : i64} {
  func.func @gather_size(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
    // expected-error @+1 {{'mt.all_gather' op result must have shape [2, 16], got 'tensor<2x8xf32>'}}
    %0 = mt.all_gather %x along 1 over "tp" : tensor<2x4xf32> -> tensor<2x8xf32>
    return %0 : tensor<2x8xf32>
  }
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  func.func @scatter_dim(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
    // expected-error @+1 {{'mt.reduce_scatter' op dim 2 is outside the 2 dimensions of result}}
    %0 = mt.reduce_scatter %x along 2 over "tp" : tensor<2x4xf32> -> tensor<2x2xf32>
    return %0 : tensor<2x2xf32>
  }
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  func.func @bias(%x: tensor<2x4xf32>, %b: tensor<3xf32>) -> tensor<2x4xf32> {
    // expected-error @+1 {{'mt.add_bias' op bias must have shape [4], got 'tensor<3xf32>'}}
    %0 = mt.add_bias %x, %b : tensor<2x4xf32>, tensor<3xf32>
    return %0 : tensor<2x4xf32>
  }
}

// -----

module attributes {mt.tensor_parallel = 4 : i64} {
  mt.param @w : tensor<4xf32> init <ones>
  func.func @finalize_grads() {
    // expected-error @+1 {{'mt.all_reduce_grads' op group_size 3 must be at least 2 and divide the group's 4 ranks}}
    mt.all_reduce_grads [@w] over "tp" {group_size = 3 : i64}
    return
  }
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  mt.param @w : tensor<4xf32> init <ones>
  func.func @finalize_grads() {
    // expected-error @+1 {{'mt.all_reduce_grads' op rows [2, 6) of @w are outside its 4 rows}}
    mt.all_reduce_grads [@w] over "tp" {group_size = 2 : i64, rows = array<i64: 2, 4>}
    return
  }
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  func.func @finalize_grads() {
    // expected-error @+1 {{'mt.all_reduce_grads' op names @nothing, which is not declared by an mt.param}}
    mt.all_reduce_grads [@nothing] over "tp"
    return
  }
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  // expected-error @+1 {{'mt.param' op parameter 'w' has 3 indices along dim 0 but its shard gives each rank 2}}
  mt.param @w : tensor<3x4xf32> init <normal(0.02)> shard <dim 0 of 4: [0+2], [2+2]>
}

// -----

module attributes {mt.tensor_parallel = 4 : i64} {
  // expected-error @+1 {{'mt.param' op parameter 'w' is sharded over 2 ranks but the module's tensor-parallel size is 4}}
  mt.param @w : tensor<2x4xf32> init <normal(0.02)> shard <dim 0 of 4: [0+2], [2+2]>
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  // expected-error @+1 {{span 3+2 of rank 1 is outside [0, 4)}}
  mt.param @w : tensor<2x4xf32> init <normal(0.02)> shard <dim 0 of 4: [0+2], [3+2]>
}

// -----

module attributes {mt.tensor_parallel = 2 : i64} {
  // expected-error @+1 {{every rank needs 2 spans, got 1}}
  mt.param @w : tensor<2x4xf32> init <normal(0.02)> shard <dim 0 of 4: [0+1, 2+1], [1+2]>
}

// -----

// expected-error @+1 {{'mt.sequence_parallel' needs 'mt.tensor_parallel' of at least 2}}
module attributes {mt.sequence_parallel} {
}

// -----

// expected-error @+1 {{'mt.tensor_parallel' must be a positive i64, got 0 : i64}}
module attributes {mt.tensor_parallel = 0 : i64} {
}

// -----

module attributes {mt.pipeline_parallel = 2 : i64} {
  func.func @stage(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    // expected-error @+1 {{pipeline stage 2 is outside the module's 2 model chunks ('mt.pipeline_parallel' x 'mt.virtual_pipeline')}}
    %0 = mt.gelu %x {mt.stage = 2 : i64} : tensor<2x4xf32>
    return %0 : tensor<2x4xf32>
  }
}

// -----

// Pipeline messages name a chunk of a module split into chunks.
module {
  func.func @unsplit(%x: tensor<2x4xf32>) {
    // expected-error @+1 {{'mt.send' op needs a module split into pipeline chunks ('mt.pipeline_parallel')}}
    mt.send %x to chunk 1 index 0 : tensor<2x4xf32>
    return
  }
}

// -----

module attributes {mt.pipeline_parallel = 2 : i64, mt.virtual_pipeline = 2 : i64} {
  func.func @far() -> tensor<2x4xf32> {
    // expected-error @+1 {{'mt.recv' op chunk 4 is outside the module's 4 pipeline chunks}}
    %0 = mt.recv from chunk 4 index 0 : tensor<2x4xf32>
    return %0 : tensor<2x4xf32>
  }
}

// -----

module attributes {mt.pipeline_parallel = 2 : i64} {
  func.func @negative(%x: tensor<2x4xf32>) {
    // expected-error @+1 {{'mt.send' op index must be non-negative, got -1}}
    mt.send %x to chunk 1 index -1 {grad} : tensor<2x4xf32>
    return
  }
}

// -----

module attributes {mt.pipeline_parallel = 2 : i64} {
  func.func @twice() {
    mt.backward_start
    // expected-error @+1 {{'mt.backward_start' op appears twice in one block; a training step has one forward and one backward half}}
    mt.backward_start
    return
  }
}

// -----

// The embedding group exists only in a module split into stages.
module attributes {mt.tensor_parallel = 2 : i64} {
  mt.param @w : tensor<4x4xf32> init <zeros>
  func.func @finalize_grads() {
    // expected-error @+1 {{'mt.all_reduce_grads' op group "embedding" needs a module split into pipeline stages ('mt.pipeline_parallel')}}
    mt.all_reduce_grads [@w] over "embedding"
    return
  }
}
