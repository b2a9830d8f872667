// mt-mixed-precision: Megatron's --bf16 / --fp16. Parameters stay f32 (the master weights) and each read is cast
// to the 16-bit type; the compute is 16-bit; the loss and its mask stay f32. Autodiff then returns the gradients
// through the casts, so they accumulate in f32.
// RUN: megatron-opt %s --mt-mixed-precision=dtype=bf16 -split-input-file | FileCheck %s
// RUN: megatron-opt %s --mt-mixed-precision=dtype=bf16 --mt-autodiff -split-input-file | FileCheck %s --check-prefix=GRAD
// RUN: megatron-opt %s --mt-mixed-precision=dtype=fp16 -split-input-file | FileCheck %s --check-prefix=FP16

// CHECK-LABEL: module attributes {mt.precision = "bf16"}
// CHECK: mt.param @w : tensor<8x4xf32>
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[X:.*]]: tensor<2x4xf32> {mt.input = "x"}, %[[LABELS:.*]]: tensor<2xi32> {mt.input = "labels"}, %[[MASK:.*]]: tensor<2xf32> {mt.input = "loss_mask"}) -> tensor<f32>
// CHECK: %[[X16:.*]] = mt.cast %[[X]] : tensor<2x4xf32> to tensor<2x4xbf16>
// CHECK: %[[W:.*]] = mt.param_ref @w : tensor<8x4xf32>
// CHECK: %[[W16:.*]] = mt.cast %[[W]] : tensor<8x4xf32> to tensor<8x4xbf16>
// CHECK: %[[Y:.*]] = mt.linear %[[X16]], %[[W16]] : tensor<2x4xbf16>, tensor<8x4xbf16> -> tensor<2x8xbf16>
// CHECK: %[[G:.*]] = mt.gelu %[[Y]] : tensor<2x8xbf16>
// CHECK: %[[L:.*]] = mt.cross_entropy %[[G]], %[[LABELS]], %[[MASK]] : tensor<2x8xbf16>, tensor<2xi32>, tensor<2xf32> -> tensor<f32>
// CHECK: return %[[L]] : tensor<f32>

// The weight's gradient comes back through the cast's backward, an f32 cast, into the f32 gradient buffer.
// GRAD-LABEL: func.func @train_step
// GRAD: %[[DW:.*]] = mt.linear_grad_weight {{.*}} -> tensor<8x4xbf16>
// GRAD: %[[DW32:.*]] = mt.cast %[[DW]] : tensor<8x4xbf16> to tensor<8x4xf32>
// GRAD: mt.grad_accumulate @w, %[[DW32]] : tensor<8x4xf32>

// FP16: mt.linear {{.*}} -> tensor<2x8xf16>
module {
  mt.param @w : tensor<8x4xf32> init <normal(0.02)>
  func.func @forward(%x: tensor<2x4xf32> {mt.input = "x"}, %labels: tensor<2xi32> {mt.input = "labels"},
                     %mask: tensor<2xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
    %w = mt.param_ref @w : tensor<8x4xf32>
    %y = mt.linear %x, %w : tensor<2x4xf32>, tensor<8x4xf32> -> tensor<2x8xf32>
    %g = mt.gelu %y : tensor<2x8xf32>
    %l = mt.cross_entropy %g, %labels, %mask : tensor<2x8xf32>, tensor<2xi32>, tensor<2xf32> -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// Without dtype the module's mt.precision (megatron-model --bf16 / --fp16) decides; "fp32" or none leaves the
// model as it is.
// RUN: megatron-opt %s --mt-mixed-precision -split-input-file | FileCheck %s --check-prefix=ATTR
// ATTR: module attributes {mt.precision = "fp16"}
// ATTR: mt.embedding {{.*}} -> tensor<2x3x4xf16>
module attributes {mt.precision = "fp16"} {
  mt.param @table : tensor<10x4xf32> init <normal(0.02)>
  func.func @forward(%tokens: tensor<2x3xi32> {mt.input = "tokens"}, %labels: tensor<2x3xi32> {mt.input = "labels"}) -> tensor<f32> {
    %t = mt.param_ref @table : tensor<10x4xf32>
    %e = mt.embedding %tokens, %t : tensor<2x3xi32>, tensor<10x4xf32> -> tensor<2x3x4xf32>
    %y = mt.linear %e, %t : tensor<2x3x4xf32>, tensor<10x4xf32> -> tensor<2x3x10xf32>
    %l = mt.cross_entropy %y, %labels : tensor<2x3x10xf32>, tensor<2x3xi32> -> tensor<f32>
    return %l : tensor<f32>
  }
}
