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

// -----

// megatron-model --bf16 asks for 16-bit compute, which only --mt-mixed-precision makes: training the f32 model
// instead would go unnoticed.
// expected-error @+1 {{mt-autodiff: the module asks for bf16 (mt.precision) but @forward computes in f32: run --mt-mixed-precision before --mt-autodiff}}
module attributes {mt.precision = "bf16"} {
  func.func @forward(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
