func.func @f(%dy: tensor<f32>, %x: tensor<f32>) -> tensor<f32> {
  %0 = mt.swiglu_grad %dy, %x : tensor<f32>, tensor<f32>
  return %0 : tensor<f32>
}
