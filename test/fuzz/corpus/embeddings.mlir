module {
  mt.param @wte : tensor<32x8xf32> init <normal(0.02)>
  mt.param @wpe : tensor<6x8xf32> init <normal(0.02)>
  func.func @embed(%ids: tensor<2x4xi64> {mt.input = "tokens"}, %types: tensor<4xi32>) -> (tensor<2x4x8xf32>, tensor<4x8xf32>) {
    %t = mt.param_ref @wte : tensor<32x8xf32>
    %e = mt.embedding %ids, %t : tensor<2x4xi64>, tensor<32x8xf32> -> tensor<2x4x8xf32>
    %p = mt.param_ref @wpe : tensor<6x8xf32>
    %s = mt.add_position_embedding %e, %p : tensor<2x4x8xf32>, tensor<6x8xf32>
    %v = mt.embedding %types, %p : tensor<4xi32>, tensor<6x8xf32> -> tensor<4x8xf32>
    return %s, %v : tensor<2x4x8xf32>, tensor<4x8xf32>
  }
  func.func @rope(%q: tensor<2x4x2x4xf32>) -> tensor<2x4x2x4xf32> {
    %r = mt.rope %q {base = 10000.0 : f64, rotary_dim = 4 : i64} : tensor<2x4x2x4xf32>
    %h = mt.rope %r {base = 5.0e5 : f64, rotary_dim = 2 : i64} : tensor<2x4x2x4xf32>
    return %h : tensor<2x4x2x4xf32>
  }
}
