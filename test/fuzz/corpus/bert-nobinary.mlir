module attributes {mt.model = "bert", mt.num_micro_batches = 1 : i64} {
  mt.param @wte.w : tensor<128x16xf32> init <normal(0.02)>
  mt.param @wpe.w : tensor<4x16xf32> init <normal(0.02)>
  mt.param @e0.iln.w : tensor<16xf32> init <ones>
  mt.param @e0.iln.b : tensor<16xf32> init <zeros>
  mt.param @e0.sa.qkv.w : tensor<48x16xf32> init <normal(0.02)>
  mt.param @e0.sa.proj.w : tensor<16x16xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @e0.mln.w : tensor<16xf32> init <ones>
  mt.param @e0.mln.b : tensor<16xf32> init <zeros>
  mt.param @e0.mlp.fc1.w : tensor<64x16xf32> init <normal(0.02)>
  mt.param @e0.mlp.fc2.w : tensor<16x64xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @enc.fln.w : tensor<16xf32> init <ones>
  mt.param @enc.fln.b : tensor<16xf32> init <zeros>
  mt.param @lm_head.dense.w : tensor<16x16xf32> init <normal(0.02)>
  mt.param @lm_head.dense.b : tensor<16xf32> init <zeros>
  mt.param @lm_head.layer_norm.w : tensor<16xf32> init <ones>
  mt.param @lm_head.layer_norm.b : tensor<16xf32> init <zeros>
  mt.param @output_layer.b : tensor<128xf32> init <zeros>
  func.func @forward(%arg0: tensor<1x4xi32> {mt.input = "tokens"}, %arg1: tensor<1x4xi32> {mt.input = "padding_mask"}, %arg2: tensor<1x4xi32> {mt.input = "labels"}, %arg3: tensor<1x4xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
    %0 = mt.param_ref @wte.w : tensor<128x16xf32>
    %1 = mt.embedding %arg0, %0 : tensor<1x4xi32>, tensor<128x16xf32> -> tensor<1x4x16xf32>
    %2 = mt.param_ref @wpe.w : tensor<4x16xf32>
    %3 = mt.add_position_embedding %1, %2 : tensor<1x4x16xf32>, tensor<4x16xf32>
    %4 = mt.param_ref @e0.iln.w : tensor<16xf32>
    %5 = mt.param_ref @e0.iln.b : tensor<16xf32>
    %6 = mt.layer_norm %3, %4, %5 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %7 = mt.param_ref @e0.sa.qkv.w : tensor<48x16xf32>
    %8 = mt.linear %6, %7 : tensor<1x4x16xf32>, tensor<48x16xf32> -> tensor<1x4x48xf32>
    %query, %key, %value = mt.split_qkv %8 {num_heads = 2 : i64, num_query_groups = 2 : i64} : tensor<1x4x48xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %9 = mt.attention  padding %query, %key, %value mask(%arg1 : tensor<1x4xi32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %10 = mt.merge_heads %9 : tensor<1x4x2x8xf32> -> tensor<1x4x16xf32>
    %11 = mt.param_ref @e0.sa.proj.w : tensor<16x16xf32>
    %12 = mt.linear %10, %11 : tensor<1x4x16xf32>, tensor<16x16xf32> -> tensor<1x4x16xf32>
    %13 = mt.add %3, %12 : tensor<1x4x16xf32>
    %14 = mt.param_ref @e0.mln.w : tensor<16xf32>
    %15 = mt.param_ref @e0.mln.b : tensor<16xf32>
    %16 = mt.layer_norm %13, %14, %15 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %17 = mt.param_ref @e0.mlp.fc1.w : tensor<64x16xf32>
    %18 = mt.linear %16, %17 : tensor<1x4x16xf32>, tensor<64x16xf32> -> tensor<1x4x64xf32>
    %19 = mt.gelu %18 : tensor<1x4x64xf32>
    %20 = mt.param_ref @e0.mlp.fc2.w : tensor<16x64xf32>
    %21 = mt.linear %19, %20 : tensor<1x4x64xf32>, tensor<16x64xf32> -> tensor<1x4x16xf32>
    %22 = mt.add %13, %21 : tensor<1x4x16xf32>
    %23 = mt.param_ref @enc.fln.w : tensor<16xf32>
    %24 = mt.param_ref @enc.fln.b : tensor<16xf32>
    %25 = mt.layer_norm %22, %23, %24 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %26 = mt.param_ref @lm_head.dense.w : tensor<16x16xf32>
    %27 = mt.param_ref @lm_head.dense.b : tensor<16xf32>
    %28 = mt.linear %25, %26, %27 : tensor<1x4x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x4x16xf32>
    %29 = mt.gelu %28 : tensor<1x4x16xf32>
    %30 = mt.param_ref @lm_head.layer_norm.w : tensor<16xf32>
    %31 = mt.param_ref @lm_head.layer_norm.b : tensor<16xf32>
    %32 = mt.layer_norm %29, %30, %31 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %33 = mt.param_ref @wte.w : tensor<128x16xf32>
    %34 = mt.param_ref @output_layer.b : tensor<128xf32>
    %35 = mt.linear %32, %33, %34 : tensor<1x4x16xf32>, tensor<128x16xf32>, tensor<128xf32> -> tensor<1x4x128xf32>
    %36 = mt.cross_entropy %35, %arg2, %arg3 : tensor<1x4x128xf32>, tensor<1x4xi32>, tensor<1x4xf32> -> tensor<f32>
    return %36 : tensor<f32>
  }
}
