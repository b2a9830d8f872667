func.func @f(%dy: tensor<2x3x8xf32>, %x: tensor<2x3x8xf32>, %w: tensor<4xf32>) {
  %dx, %dw, %db = mt.layer_norm_grad %dy, %x, %w {epsilon = -1.0 : f64} : tensor<2x3x8xf32>, tensor<4xf32>
  %rx, %rw = mt.rms_norm_grad %dy, %x, %w {epsilon = 0.0 : f64} : tensor<2x3x8xf32>, tensor<4xf32>
  return
}
