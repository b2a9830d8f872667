// RUN: megatron-opt %s --mt-autodiff -split-input-file -verify-diagnostics

// expected-error @+1 {{mt-autodiff: the module has no @forward function to differentiate}}
module {
  func.func @model(%x: tensor<2xf32>) -> tensor<2xf32> {
    return %x : tensor<2xf32>
  }
}

// -----

// expected-error @+1 {{mt-autodiff: the module already has a @train_step}}
module {
  func.func @forward(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

// -----

// expected-error @+1 {{mt-autodiff: @forward must be one block returning the scalar f32 (or f64) loss, got '(tensor<2x4xf32>) -> tensor<2x4xf32>'}}
func.func @forward(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  return %x : tensor<2x4xf32>
}
