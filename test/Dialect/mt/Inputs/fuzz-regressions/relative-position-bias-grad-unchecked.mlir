func.func @f(%db: tensor<2x4x4xf32>) {
  %t = mt.relative_position_bias_grad %db {bidirectional = true, max_distance = -7 : i64, num_buckets = 3 : i64} : tensor<2x4x4xf32> -> tensor<3x2xf32>
  return
}
