func.func @f(%q: tensor<2xf32>) {
  %dq, %dk, %dv = mt.attention_grad causal %q, %q, %q, %q, %q {num_heads = 1 : i64, num_query_groups = 1 : i64, softmax_scale = 1.0 : f64} : tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<2xf32>, tensor<2xf32>, tensor<2xf32>
  return
}
