module {
  mt.param @w : tensor<8xf32> init <ones>
  mt.param @b : tensor<8xf32> init <zeros>
  mt.param @h : tensor<8xbf16> init <ones>
  func.func @norms(%x: tensor<2x4x8xf32>, %y: tensor<8xbf16>) -> (tensor<2x4x8xf32>, tensor<8xbf16>) {
    %w = mt.param_ref @w : tensor<8xf32>
    %b = mt.param_ref @b : tensor<8xf32>
    %ln = mt.layer_norm %x, %w, %b {epsilon = 1.0e-5 : f64} : tensor<2x4x8xf32>, tensor<8xf32>
    %rms = mt.rms_norm %ln, %w {epsilon = 1.0e-6 : f64} : tensor<2x4x8xf32>, tensor<8xf32>
    %h = mt.param_ref @h : tensor<8xbf16>
    %v = mt.rms_norm %y, %h {epsilon = 0.5 : f64} : tensor<8xbf16>, tensor<8xbf16>
    return %rms, %v : tensor<2x4x8xf32>, tensor<8xbf16>
  }
}
