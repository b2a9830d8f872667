module attributes {mt.model = "bert"} {
  mt.param @top : tensor<2xf32> init <ones>
  module @inner attributes {mt.num_micro_batches = 3 : i64} {
    mt.param @p : tensor<2x2xf32> init <normal(0.25)>
    func.func private @decl(tensor<2xf32> {mt.input = "x"}) -> tensor<2xf32>
    func.func @g(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
      %p = mt.param_ref @p : tensor<2x2xf32>
      %y = mt.linear %x, %p : tensor<3x2xf32>, tensor<2x2xf32> -> tensor<3x2xf32>
      return %y : tensor<3x2xf32>
    }
  }
}
