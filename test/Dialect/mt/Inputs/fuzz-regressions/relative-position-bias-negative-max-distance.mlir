module {
  mt.param @rpb : tensor<8x2xf32> init <normal(0.02)>
  func.func @bias() -> tensor<2x4x4xf32> {
    %t = mt.param_ref @rpb : tensor<8x2xf32>
    %enc = mt.relative_position_bias %t {num_buckets = 8 : i64, max_distance = -1 : i64, bidirectional = true} : tensor<8x2xf32> -> tensor<2x4x4xf32>
    return %enc : tensor<2x4x4xf32>
  }
}
