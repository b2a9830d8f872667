func.func @f(%x: tensor<f32>) -> tensor<1xf32> {
  %0 = mt.sum_rows %x : tensor<f32> -> tensor<1xf32>
  return %0 : tensor<1xf32>
}
