module {
  mt.param @w : tensor<1048576x65536xbf16> init <normal(0.02)>
  func.func @f(%x: tensor<2147483648x65536xbf16>) -> tensor<2147483648x1048576xbf16> {
    %w = mt.param_ref @w : tensor<1048576x65536xbf16>
    %y = mt.linear %x, %w : tensor<2147483648x65536xbf16>, tensor<1048576x65536xbf16> -> tensor<2147483648x1048576xbf16>
    return %y : tensor<2147483648x1048576xbf16>
  }
}
