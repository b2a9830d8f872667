module {
  mt.param @w : tensor<12x8xf32> init <normal(0.02)>
  mt.param @b : tensor<12xf32> init <zeros>
  mt.param @pw : tensor<8x8xf32> init <normal(0.02)>
  mt.param @pb : tensor<8xf32> init <zeros>
  func.func @linear(%x: tensor<2x4x8xf32>, %m: tensor<3x8xf32>) -> (tensor<2x4x12xf32>, tensor<3x12xf32>, tensor<2x8xf32>) {
    %w = mt.param_ref @w : tensor<12x8xf32>
    %b = mt.param_ref @b : tensor<12xf32>
    %y = mt.linear %x, %w, %b : tensor<2x4x8xf32>, tensor<12x8xf32>, tensor<12xf32> -> tensor<2x4x12xf32>
    %z = mt.linear %m, %w : tensor<3x8xf32>, tensor<12x8xf32> -> tensor<3x12xf32>
    %pw = mt.param_ref @pw : tensor<8x8xf32>
    %pb = mt.param_ref @pb : tensor<8xf32>
    %p = mt.pooler %x, %pw, %pb : tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32> -> tensor<2x8xf32>
    return %y, %z, %p : tensor<2x4x12xf32>, tensor<3x12xf32>, tensor<2x8xf32>
  }
}
