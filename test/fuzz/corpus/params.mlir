module attributes {mt.model = "gpt", mt.num_micro_batches = 4 : i64} {
  mt.param @w : tensor<8x4xf32> init <normal(0.02)>
  mt.param @"layers.0.proj" : tensor<4x8xbf16> init <scaled_normal(2.0E-2, layers = 12)>
  mt.param @b : tensor<4xf16> init <zeros>
  mt.param @g : tensor<4xf64> init <ones>
  mt.param @e : tensor<2x2xf32> init <normal(1.0)>
  "mt.param"() <{init = #mt.init<normal(1.5e-3)>, sym_name = "generic", type = tensor<3xf32>}> : () -> ()
  func.func @refs(%x: tensor<2xi64> {mt.input = "tokens"}) -> (tensor<8x4xf32>, tensor<4x8xbf16>, tensor<4xf16>) {
    %w = mt.param_ref @w : tensor<8x4xf32>
    %p = mt.param_ref @"layers.0.proj" : tensor<4x8xbf16>
    %b = "mt.param_ref"() <{name = @b}> : () -> tensor<4xf16>
    return %w, %p, %b : tensor<8x4xf32>, tensor<4x8xbf16>, tensor<4xf16>
  }
}
