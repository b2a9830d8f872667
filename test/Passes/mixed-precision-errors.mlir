// RUN: megatron-opt %s --mt-mixed-precision=dtype=bf16 -split-input-file -verify-diagnostics
// RUN: not megatron-opt %s --mt-mixed-precision=dtype=fp8 -split-input-file 2>&1 | FileCheck %s --check-prefix=DTYPE
// DTYPE: mt-mixed-precision: dtype must be bf16 or fp16, got 'fp8'

// expected-error @+1 {{mt-mixed-precision: the module already has @train_step; run --mt-mixed-precision before --mt-autodiff}}
module {
  func.func @forward(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

// -----

module {
  mt.param @w : tensor<4xf32> init <ones>
  // expected-error @+1 {{mt-mixed-precision: @forward already computes in 16 bits}}
  func.func @forward(%labels: tensor<2xi32> {mt.input = "labels"}) -> tensor<f32> {
    %w = mt.param_ref @w : tensor<4xf32>
    %h = mt.cast %w : tensor<4xf32> to tensor<4xbf16>
    %y = mt.gelu %h : tensor<4xbf16>
    %z = mt.cast %y : tensor<4xbf16> to tensor<4xf32>
    %s = mt.fill {value = 1.0 : f64} : tensor<f32>
    return %s : tensor<f32>
  }
}

// -----

// expected-error @+1 {{mt-mixed-precision: the module has no @forward to convert}}
module {
  func.func @model(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
