func.func @f(%q: tensor<1x2x4x2xf32>, %k: tensor<1x3x3x5xf32>, %m: tensor<7xi32>) {
  %dq, %dk, %dv = mt.attention_grad causal %q, %q, %q, %k, %k mask(%m : tensor<7xi32>) {num_heads = 0 : i64, num_query_groups = -1 : i64, softmax_scale = -1.0 : f64, dropout = 7.0 : f64} : tensor<1x2x4x2xf32>, tensor<1x3x3x5xf32>, tensor<1x3x3x5xf32> -> tensor<1x2x4x2xf32>, tensor<1x3x3x5xf32>, tensor<1x3x3x5xf32>
  return
}
