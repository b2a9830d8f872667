func.func @f(%dy: tensor<1x2x2x8xf32>, %v: tensor<8xf32>) {
  %a = mt.rope_grad %dy {base = -5.0 : f64, rotary_dim = 1000 : i64} : tensor<1x2x2x8xf32>
  %b = mt.rope_grad %v {base = 10000.0 : f64, rotary_dim = -3 : i64} : tensor<8xf32>
  return
}
