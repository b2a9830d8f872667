module attributes {mt.model = "gpt", mt.num_micro_batches = 4 : i64} {
  mt.param @wte.w : tensor<128x16xf32> init <normal(0.02)>
  mt.param @wpe.w : tensor<4x16xf32> init <normal(0.02)>
  mt.param @d0.iln.w : tensor<16xf32> init <ones>
  mt.param @d0.iln.b : tensor<16xf32> init <zeros>
  mt.param @d0.sa.qkv.w : tensor<48x16xf32> init <normal(0.02)>
  mt.param @d0.sa.proj.w : tensor<16x16xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @d0.mln.w : tensor<16xf32> init <ones>
  mt.param @d0.mln.b : tensor<16xf32> init <zeros>
  mt.param @d0.mlp.fc1.w : tensor<64x16xf32> init <normal(0.02)>
  mt.param @d0.mlp.fc2.w : tensor<16x64xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @dec.fln.w : tensor<16xf32> init <ones>
  mt.param @dec.fln.b : tensor<16xf32> init <zeros>
  mt.param @output_layer.w : tensor<128x16xf32> init <normal(0.02)>
  func.func @forward(%arg0: tensor<2x4xi32> {mt.input = "tokens"}, %arg1: tensor<2x4xi32> {mt.input = "labels"}, %arg2: tensor<2x4xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
    %0 = mt.param_ref @wte.w : tensor<128x16xf32>
    %1 = mt.embedding %arg0, %0 : tensor<2x4xi32>, tensor<128x16xf32> -> tensor<2x4x16xf32>
    %2 = mt.param_ref @wpe.w : tensor<4x16xf32>
    %3 = mt.add_position_embedding %1, %2 : tensor<2x4x16xf32>, tensor<4x16xf32>
    %4 = mt.param_ref @d0.iln.w : tensor<16xf32>
    %5 = mt.param_ref @d0.iln.b : tensor<16xf32>
    %6 = mt.layer_norm %3, %4, %5 {epsilon = 1.000000e-05 : f64} : tensor<2x4x16xf32>, tensor<16xf32>
    %7 = mt.param_ref @d0.sa.qkv.w : tensor<48x16xf32>
    %8 = mt.linear %6, %7 : tensor<2x4x16xf32>, tensor<48x16xf32> -> tensor<2x4x48xf32>
    %query, %key, %value = mt.split_qkv %8 {num_heads = 2 : i64, num_query_groups = 2 : i64} : tensor<2x4x48xf32> -> tensor<2x4x2x8xf32>, tensor<2x4x2x8xf32>, tensor<2x4x2x8xf32>
    %9 = mt.attention  causal %query, %key, %value {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<2x4x2x8xf32>, tensor<2x4x2x8xf32>, tensor<2x4x2x8xf32>
    %10 = mt.merge_heads %9 : tensor<2x4x2x8xf32> -> tensor<2x4x16xf32>
    %11 = mt.param_ref @d0.sa.proj.w : tensor<16x16xf32>
    %12 = mt.linear %10, %11 : tensor<2x4x16xf32>, tensor<16x16xf32> -> tensor<2x4x16xf32>
    %13 = mt.add %3, %12 : tensor<2x4x16xf32>
    %14 = mt.param_ref @d0.mln.w : tensor<16xf32>
    %15 = mt.param_ref @d0.mln.b : tensor<16xf32>
    %16 = mt.layer_norm %13, %14, %15 {epsilon = 1.000000e-05 : f64} : tensor<2x4x16xf32>, tensor<16xf32>
    %17 = mt.param_ref @d0.mlp.fc1.w : tensor<64x16xf32>
    %18 = mt.linear %16, %17 : tensor<2x4x16xf32>, tensor<64x16xf32> -> tensor<2x4x64xf32>
    %19 = mt.gelu %18 : tensor<2x4x64xf32>
    %20 = mt.param_ref @d0.mlp.fc2.w : tensor<16x64xf32>
    %21 = mt.linear %19, %20 : tensor<2x4x64xf32>, tensor<16x64xf32> -> tensor<2x4x16xf32>
    %22 = mt.add %13, %21 : tensor<2x4x16xf32>
    %23 = mt.param_ref @dec.fln.w : tensor<16xf32>
    %24 = mt.param_ref @dec.fln.b : tensor<16xf32>
    %25 = mt.layer_norm %22, %23, %24 {epsilon = 1.000000e-05 : f64} : tensor<2x4x16xf32>, tensor<16xf32>
    %26 = mt.param_ref @output_layer.w : tensor<128x16xf32>
    %27 = mt.linear %25, %26 : tensor<2x4x16xf32>, tensor<128x16xf32> -> tensor<2x4x128xf32>
    %28 = mt.cross_entropy %27, %arg1, %arg2 : tensor<2x4x128xf32>, tensor<2x4xi32>, tensor<2x4xf32> -> tensor<f32>
    return %28 : tensor<f32>
  }
}
