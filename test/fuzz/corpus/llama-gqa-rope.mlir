module attributes {mt.model = "gpt", mt.num_micro_batches = 1 : i64} {
  mt.param @wte.w : tensor<128x16xf32> init <normal(0.02)>
  mt.param @d0.iln.w : tensor<16xf32> init <ones>
  mt.param @d0.sa.qkv.w : tensor<32x16xf32> init <normal(0.02)>
  mt.param @d0.sa.proj.w : tensor<16x16xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @d0.mln.w : tensor<16xf32> init <ones>
  mt.param @d0.mlp.fc1.w : tensor<64x16xf32> init <normal(0.02)>
  mt.param @d0.mlp.fc2.w : tensor<16x32xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @dec.fln.w : tensor<16xf32> init <ones>
  func.func @forward(%arg0: tensor<1x4xi32> {mt.input = "tokens"}, %arg1: tensor<1x4xi32> {mt.input = "labels"}, %arg2: tensor<1x4xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
    %0 = mt.param_ref @wte.w : tensor<128x16xf32>
    %1 = mt.embedding %arg0, %0 : tensor<1x4xi32>, tensor<128x16xf32> -> tensor<1x4x16xf32>
    %2 = mt.param_ref @d0.iln.w : tensor<16xf32>
    %3 = mt.rms_norm %1, %2 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %4 = mt.param_ref @d0.sa.qkv.w : tensor<32x16xf32>
    %5 = mt.linear %3, %4 : tensor<1x4x16xf32>, tensor<32x16xf32> -> tensor<1x4x32xf32>
    %query, %key, %value = mt.split_qkv %5 {num_heads = 2 : i64, num_query_groups = 1 : i64} : tensor<1x4x32xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>
    %6 = mt.rope %query {base = 1.000000e+04 : f64, rotary_dim = 4 : i64} : tensor<1x4x2x8xf32>
    %7 = mt.rope %key {base = 1.000000e+04 : f64, rotary_dim = 4 : i64} : tensor<1x4x1x8xf32>
    %8 = mt.attention  causal %6, %7, %value {num_heads = 2 : i64, num_query_groups = 1 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>
    %9 = mt.merge_heads %8 : tensor<1x4x2x8xf32> -> tensor<1x4x16xf32>
    %10 = mt.param_ref @d0.sa.proj.w : tensor<16x16xf32>
    %11 = mt.linear %9, %10 : tensor<1x4x16xf32>, tensor<16x16xf32> -> tensor<1x4x16xf32>
    %12 = mt.add %1, %11 : tensor<1x4x16xf32>
    %13 = mt.param_ref @d0.mln.w : tensor<16xf32>
    %14 = mt.rms_norm %12, %13 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %15 = mt.param_ref @d0.mlp.fc1.w : tensor<64x16xf32>
    %16 = mt.linear %14, %15 : tensor<1x4x16xf32>, tensor<64x16xf32> -> tensor<1x4x64xf32>
    %17 = mt.swiglu %16 : tensor<1x4x64xf32> -> tensor<1x4x32xf32>
    %18 = mt.param_ref @d0.mlp.fc2.w : tensor<16x32xf32>
    %19 = mt.linear %17, %18 : tensor<1x4x32xf32>, tensor<16x32xf32> -> tensor<1x4x16xf32>
    %20 = mt.add %12, %19 : tensor<1x4x16xf32>
    %21 = mt.param_ref @dec.fln.w : tensor<16xf32>
    %22 = mt.rms_norm %20, %21 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %23 = mt.param_ref @wte.w : tensor<128x16xf32>
    %24 = mt.linear %22, %23 : tensor<1x4x16xf32>, tensor<128x16xf32> -> tensor<1x4x128xf32>
    %25 = mt.cross_entropy %24, %arg1, %arg2 : tensor<1x4x128xf32>, tensor<1x4xi32>, tensor<1x4xf32> -> tensor<f32>
    return %25 : tensor<f32>
  }
}
