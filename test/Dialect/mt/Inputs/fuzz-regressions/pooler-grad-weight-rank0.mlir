func.func @f(%dy: tensor<2x4xf32>, %x: tensor<2x3x4xf32>, %w: tensor<f32>) {
  %dx, %dw, %db = mt.pooler_grad %dy, %dy, %x, %w : tensor<2x4xf32>, tensor<2x3x4xf32>, tensor<f32> -> tensor<4xf32>
  return
}
