module {
  func.func @act(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x8xbf16>) {
    %g = mt.gelu %x : tensor<2x8xf32>
    %n = mt.gelu %g {approximation = #mt<gelu_approximation none>} : tensor<2x8xf32>
    %t = mt.gelu %n {approximation = #mt<gelu_approximation tanh>} : tensor<2x8xf32>
    %a = mt.add %t, %x : tensor<2x8xf32>
    %d = mt.dropout %a {rate = 0.1 : f64} : tensor<2x8xf32>
    %s = mt.swiglu %d : tensor<2x8xf32> -> tensor<2x4xf32>
    %c = mt.cast %d : tensor<2x8xf32> to tensor<2x8xbf16>
    return %s, %c : tensor<2x4xf32>, tensor<2x8xbf16>
  }
}
