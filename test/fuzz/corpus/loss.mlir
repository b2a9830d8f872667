module {
  func.func @loss(%logits: tensor<2x4x16xf32>, %labels: tensor<2x4xi64> {mt.input = "labels"}, %mask: tensor<2x4xf32> {mt.input = "loss_mask"}, %h: tensor<2x3xf16>, %l: tensor<2xi32>) -> (tensor<f32>, tensor<f32>) {
    %a = mt.cross_entropy %logits, %labels, %mask : tensor<2x4x16xf32>, tensor<2x4xi64>, tensor<2x4xf32> -> tensor<f32>
    %b = mt.cross_entropy %h, %l : tensor<2x3xf16>, tensor<2xi32> -> tensor<f32>
    return %a, %b : tensor<f32>, tensor<f32>
  }
}
