module attributes {mt.model = "gpt", mt.num_micro_batches = 1 : i64} {
  mt.param @wte.w : tensor<128x16xf32> init <normal(0.02)>
  mt.param @wpe.w : tensor<4x16xf32> init <normal(0.02)>
  mt.param @d0.iln.w : tensor<16xf32> init <ones>
  mt.param @d0.iln.b : tensor<16xf32> init <zeros>
  mt.param @d0.sa.qkv.w : tensor<48x16xf32> init <normal(0.02)>
  mt.param @d0.sa.qkv.b : tensor<48xf32> init <zeros>
  mt.param @d0.sa.proj.w : tensor<16x16xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @d0.sa.proj.b : tensor<16xf32> init <zeros>
  mt.param @d0.mln.w : tensor<16xf32> init <ones>
  mt.param @d0.mln.b : tensor<16xf32> init <zeros>
  mt.param @d0.mlp.fc1.w : tensor<64x16xf32> init <normal(0.02)>
  mt.param @d0.mlp.fc1.b : tensor<64xf32> init <zeros>
  mt.param @d0.mlp.fc2.w : tensor<16x64xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @d0.mlp.fc2.b : tensor<16xf32> init <zeros>
  mt.param @dec.fln.w : tensor<16xf32> init <ones>
  mt.param @dec.fln.b : tensor<16xf32> init <zeros>
  func.func @forward(%arg0: tensor<1x4xi32> {mt.input = "tokens"}, %arg1: tensor<1x4xi32> {mt.input = "labels"}, %arg2: tensor<1x4xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
    %0 = mt.param_ref @wte.w : tensor<128x16xf32>
    %1 = mt.embedding %arg0, %0 : tensor<1x4xi32>, tensor<128x16xf32> -> tensor<1x4x16xf32>
    %2 = mt.param_ref @wpe.w : tensor<4x16xf32>
    %3 = mt.add_position_embedding %1, %2 : tensor<1x4x16xf32>, tensor<4x16xf32>
    %4 = mt.dropout %3 {rate = 1.000000e-01 : f64} : tensor<1x4x16xf32>
    %5 = mt.param_ref @d0.iln.w : tensor<16xf32>
    %6 = mt.param_ref @d0.iln.b : tensor<16xf32>
    %7 = mt.layer_norm %4, %5, %6 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %8 = mt.param_ref @d0.sa.qkv.w : tensor<48x16xf32>
    %9 = mt.param_ref @d0.sa.qkv.b : tensor<48xf32>
    %10 = mt.linear %7, %8, %9 : tensor<1x4x16xf32>, tensor<48x16xf32>, tensor<48xf32> -> tensor<1x4x48xf32>
    %query, %key, %value = mt.split_qkv %10 {num_heads = 2 : i64, num_query_groups = 2 : i64} : tensor<1x4x48xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %11 = mt.attention  causal %query, %key, %value {dropout = 1.000000e-01 : f64, num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %12 = mt.merge_heads %11 : tensor<1x4x2x8xf32> -> tensor<1x4x16xf32>
    %13 = mt.param_ref @d0.sa.proj.w : tensor<16x16xf32>
    %14 = mt.param_ref @d0.sa.proj.b : tensor<16xf32>
    %15 = mt.linear %12, %13, %14 : tensor<1x4x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x4x16xf32>
    %16 = mt.dropout %15 {rate = 1.000000e-01 : f64} : tensor<1x4x16xf32>
    %17 = mt.add %4, %16 : tensor<1x4x16xf32>
    %18 = mt.param_ref @d0.mln.w : tensor<16xf32>
    %19 = mt.param_ref @d0.mln.b : tensor<16xf32>
    %20 = mt.layer_norm %17, %18, %19 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %21 = mt.param_ref @d0.mlp.fc1.w : tensor<64x16xf32>
    %22 = mt.param_ref @d0.mlp.fc1.b : tensor<64xf32>
    %23 = mt.linear %20, %21, %22 : tensor<1x4x16xf32>, tensor<64x16xf32>, tensor<64xf32> -> tensor<1x4x64xf32>
    %24 = mt.gelu %23 : tensor<1x4x64xf32>
    %25 = mt.param_ref @d0.mlp.fc2.w : tensor<16x64xf32>
    %26 = mt.param_ref @d0.mlp.fc2.b : tensor<16xf32>
    %27 = mt.linear %24, %25, %26 : tensor<1x4x64xf32>, tensor<16x64xf32>, tensor<16xf32> -> tensor<1x4x16xf32>
    %28 = mt.dropout %27 {rate = 1.000000e-01 : f64} : tensor<1x4x16xf32>
    %29 = mt.add %17, %28 : tensor<1x4x16xf32>
    %30 = mt.param_ref @dec.fln.w : tensor<16xf32>
    %31 = mt.param_ref @dec.fln.b : tensor<16xf32>
    %32 = mt.layer_norm %29, %30, %31 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %33 = mt.param_ref @wte.w : tensor<128x16xf32>
    %34 = mt.linear %32, %33 : tensor<1x4x16xf32>, tensor<128x16xf32> -> tensor<1x4x128xf32>
    %35 = mt.cross_entropy %34, %arg1, %arg2 : tensor<1x4x128xf32>, tensor<1x4xi32>, tensor<1x4xf32> -> tensor<f32>
    return %35 : tensor<f32>
  }
}
