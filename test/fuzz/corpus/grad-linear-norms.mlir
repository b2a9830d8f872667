module {
  mt.param @w : tensor<6x8xf32> init <normal(0.02)>
  mt.param @g : tensor<8xf32> init <ones>
  func.func @grads(%dy: tensor<2x3x6xf32>, %x: tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>, tensor<6x8xf32>, tensor<6xf32>) {
    %w = mt.param_ref @w : tensor<6x8xf32>
    %dx = mt.linear_grad_input %dy, %w : tensor<2x3x6xf32>, tensor<6x8xf32> -> tensor<2x3x8xf32>
    %dw = mt.linear_grad_weight %dy, %x : tensor<2x3x6xf32>, tensor<2x3x8xf32> -> tensor<6x8xf32>
    %db = mt.sum_rows %dy : tensor<2x3x6xf32> -> tensor<6xf32>
    %g = mt.param_ref @g : tensor<8xf32>
    %lx, %lw, %lb = mt.layer_norm_grad %dx, %x, %g {epsilon = 1.0e-5 : f64} : tensor<2x3x8xf32>, tensor<8xf32>
    %rx, %rw = mt.rms_norm_grad %lx, %x, %g {epsilon = 1.0e-6 : f64} : tensor<2x3x8xf32>, tensor<8xf32>
    %gx = mt.gelu_grad %rx, %x : tensor<2x3x8xf32>
    %half = mt.swiglu %x : tensor<2x3x8xf32> -> tensor<2x3x4xf32>
    %sx = mt.swiglu_grad %half, %x : tensor<2x3x4xf32>, tensor<2x3x8xf32>
    %one = mt.fill {value = 1.0 : f64} : tensor<f32>
    mt.grad_accumulate @w, %dw : tensor<6x8xf32>
    mt.grad_accumulate @g, %rw : tensor<8xf32>
    return %gx, %dw, %db : tensor<2x3x8xf32>, tensor<6x8xf32>, tensor<6xf32>
  }
}
