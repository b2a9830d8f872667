module {
  mt.param @rpb : tensor<8x2xf32> init <normal(0.02)>
  func.func @bias() -> (tensor<2x4x4xf32>, tensor<2x2x4xf32>) {
    %t = mt.param_ref @rpb : tensor<8x2xf32>
    %enc = mt.relative_position_bias %t {num_buckets = 8 : i64, max_distance = 16 : i64, bidirectional = true} : tensor<8x2xf32> -> tensor<2x4x4xf32>
    %dec = mt.relative_position_bias %t {num_buckets = 8 : i64, max_distance = 16 : i64, bidirectional = false} : tensor<8x2xf32> -> tensor<2x2x4xf32>
    return %enc, %dec : tensor<2x4x4xf32>, tensor<2x2x4xf32>
  }
}
