module {
  func.func @causal(%q: tensor<1x4x4x2xf32>, %k: tensor<1x4x2x2xf32>, %v: tensor<1x4x2x2xf32>) -> tensor<1x4x4x2xf32> {
    %o = mt.attention causal %q, %k, %v {num_heads = 4 : i64, num_query_groups = 2 : i64, softmax_scale = 0.70710678118654746 : f64} : tensor<1x4x4x2xf32>, tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32>
    return %o : tensor<1x4x4x2xf32>
  }
  func.func @cross(%q: tensor<1x2x2x2xf32>, %kv: tensor<1x4x2x2xf32>, %m: tensor<1x4xi1> {mt.input = "padding_mask"}, %b: tensor<2x2x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
    %o = mt.attention bidirectional %q, %kv, %kv {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 1.0 : f64, dropout = 0.1 : f64} : tensor<1x2x2x2xf32>, tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32>
    %p = mt.attention padding %o, %kv, %kv mask(%m : tensor<1x4xi1>) bias(%b : tensor<2x2x4xf32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.5 : f64} : tensor<1x2x2x2xf32>, tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32>
    return %o, %p : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
  }
}
