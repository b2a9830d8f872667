module attributes {mt.model = "bert", mt.num_micro_batches = 1 : i64} {
  mt.param @wte.w : tensor<128x16xf32> init <normal(0.02)>
  mt.param @wpe.w : tensor<4x16xf32> init <normal(0.02)>
  mt.param @tte.w : tensor<2x16xf32> init <normal(0.02)>
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
  mt.param @pooler.dense.w : tensor<16x16xf32> init <normal(0.02)>
  mt.param @pooler.dense.b : tensor<16xf32> init <zeros>
  mt.param @binary_head.w : tensor<2x16xf32> init <normal(0.02)>
  mt.param @binary_head.b : tensor<2xf32> init <zeros>
  func.func @forward(%arg0: tensor<1x4xi32> {mt.input = "tokens"}, %arg1: tensor<1x4xi32> {mt.input = "padding_mask"}, %arg2: tensor<1x4xi32> {mt.input = "labels"}, %arg3: tensor<1x4xf32> {mt.input = "loss_mask"}, %arg4: tensor<1x4xi32> {mt.input = "tokentype_ids"}, %arg5: tensor<1xi32> {mt.input = "sentence_order"}) -> tensor<f32> {
    %0 = mt.param_ref @wte.w : tensor<128x16xf32>
    %1 = mt.embedding %arg0, %0 : tensor<1x4xi32>, tensor<128x16xf32> -> tensor<1x4x16xf32>
    %2 = mt.param_ref @wpe.w : tensor<4x16xf32>
    %3 = mt.add_position_embedding %1, %2 : tensor<1x4x16xf32>, tensor<4x16xf32>
    %4 = mt.param_ref @tte.w : tensor<2x16xf32>
    %5 = mt.embedding %arg4, %4 : tensor<1x4xi32>, tensor<2x16xf32> -> tensor<1x4x16xf32>
    %6 = mt.add %3, %5 : tensor<1x4x16xf32>
    %7 = mt.param_ref @e0.iln.w : tensor<16xf32>
    %8 = mt.param_ref @e0.iln.b : tensor<16xf32>
    %9 = mt.layer_norm %6, %7, %8 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %10 = mt.param_ref @e0.sa.qkv.w : tensor<48x16xf32>
    %11 = mt.linear %9, %10 : tensor<1x4x16xf32>, tensor<48x16xf32> -> tensor<1x4x48xf32>
    %query, %key, %value = mt.split_qkv %11 {num_heads = 2 : i64, num_query_groups = 2 : i64} : tensor<1x4x48xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %12 = mt.attention  padding %query, %key, %value mask(%arg1 : tensor<1x4xi32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %13 = mt.merge_heads %12 : tensor<1x4x2x8xf32> -> tensor<1x4x16xf32>
    %14 = mt.param_ref @e0.sa.proj.w : tensor<16x16xf32>
    %15 = mt.linear %13, %14 : tensor<1x4x16xf32>, tensor<16x16xf32> -> tensor<1x4x16xf32>
    %16 = mt.add %6, %15 : tensor<1x4x16xf32>
    %17 = mt.param_ref @e0.mln.w : tensor<16xf32>
    %18 = mt.param_ref @e0.mln.b : tensor<16xf32>
    %19 = mt.layer_norm %16, %17, %18 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %20 = mt.param_ref @e0.mlp.fc1.w : tensor<64x16xf32>
    %21 = mt.linear %19, %20 : tensor<1x4x16xf32>, tensor<64x16xf32> -> tensor<1x4x64xf32>
    %22 = mt.gelu %21 : tensor<1x4x64xf32>
    %23 = mt.param_ref @e0.mlp.fc2.w : tensor<16x64xf32>
    %24 = mt.linear %22, %23 : tensor<1x4x64xf32>, tensor<16x64xf32> -> tensor<1x4x16xf32>
    %25 = mt.add %16, %24 : tensor<1x4x16xf32>
    %26 = mt.param_ref @enc.fln.w : tensor<16xf32>
    %27 = mt.param_ref @enc.fln.b : tensor<16xf32>
    %28 = mt.layer_norm %25, %26, %27 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %29 = mt.param_ref @lm_head.dense.w : tensor<16x16xf32>
    %30 = mt.param_ref @lm_head.dense.b : tensor<16xf32>
    %31 = mt.linear %28, %29, %30 : tensor<1x4x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x4x16xf32>
    %32 = mt.gelu %31 : tensor<1x4x16xf32>
    %33 = mt.param_ref @lm_head.layer_norm.w : tensor<16xf32>
    %34 = mt.param_ref @lm_head.layer_norm.b : tensor<16xf32>
    %35 = mt.layer_norm %32, %33, %34 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %36 = mt.param_ref @wte.w : tensor<128x16xf32>
    %37 = mt.param_ref @output_layer.b : tensor<128xf32>
    %38 = mt.linear %35, %36, %37 : tensor<1x4x16xf32>, tensor<128x16xf32>, tensor<128xf32> -> tensor<1x4x128xf32>
    %39 = mt.cross_entropy %38, %arg2, %arg3 : tensor<1x4x128xf32>, tensor<1x4xi32>, tensor<1x4xf32> -> tensor<f32>
    %40 = mt.param_ref @pooler.dense.w : tensor<16x16xf32>
    %41 = mt.param_ref @pooler.dense.b : tensor<16xf32>
    %42 = mt.pooler %28, %40, %41 : tensor<1x4x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x16xf32>
    %43 = mt.param_ref @binary_head.w : tensor<2x16xf32>
    %44 = mt.param_ref @binary_head.b : tensor<2xf32>
    %45 = mt.linear %42, %43, %44 : tensor<1x16xf32>, tensor<2x16xf32>, tensor<2xf32> -> tensor<1x2xf32>
    %46 = mt.cross_entropy %45, %arg5 : tensor<1x2xf32>, tensor<1xi32> -> tensor<f32>
    %47 = mt.add %39, %46 : tensor<f32>
    return %47 : tensor<f32>
  }
}
