module attributes {mt.model = "t5", mt.num_micro_batches = 1 : i64} {
  mt.param @enc.rpb.w : tensor<32x2xf32> init <normal(0.02)>
  mt.param @wte.w : tensor<128x16xf32> init <normal(0.02)>
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
  mt.param @dec.rpb.w : tensor<32x2xf32> init <normal(0.02)>
  mt.param @d0.iln.w : tensor<16xf32> init <ones>
  mt.param @d0.iln.b : tensor<16xf32> init <zeros>
  mt.param @d0.sa.qkv.w : tensor<48x16xf32> init <normal(0.02)>
  mt.param @d0.sa.proj.w : tensor<16x16xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @d0.cln.w : tensor<16xf32> init <ones>
  mt.param @d0.cln.b : tensor<16xf32> init <zeros>
  mt.param @d0.ca.q.w : tensor<16x16xf32> init <normal(0.02)>
  mt.param @d0.ca.kv.w : tensor<32x16xf32> init <normal(0.02)>
  mt.param @d0.ca.proj.w : tensor<16x16xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @d0.mln.w : tensor<16xf32> init <ones>
  mt.param @d0.mln.b : tensor<16xf32> init <zeros>
  mt.param @d0.mlp.fc1.w : tensor<64x16xf32> init <normal(0.02)>
  mt.param @d0.mlp.fc2.w : tensor<16x64xf32> init <scaled_normal(0.02, layers = 1)>
  mt.param @dec.fln.w : tensor<16xf32> init <ones>
  mt.param @dec.fln.b : tensor<16xf32> init <zeros>
  mt.param @lm_head.output_layer.b : tensor<128xf32> init <zeros>
  func.func @forward(%arg0: tensor<1x4xi32> {mt.input = "encoder_tokens"}, %arg1: tensor<1x2xi32> {mt.input = "decoder_tokens"}, %arg2: tensor<1x4xi32> {mt.input = "encoder_padding_mask"}, %arg3: tensor<1x2xi32> {mt.input = "labels"}, %arg4: tensor<1x2xf32> {mt.input = "loss_mask"}) -> tensor<f32> {
    %0 = mt.param_ref @enc.rpb.w : tensor<32x2xf32>
    %1 = mt.relative_position_bias %0 {bidirectional = true, max_distance = 128 : i64, num_buckets = 32 : i64} : tensor<32x2xf32> -> tensor<2x4x4xf32>
    %2 = mt.param_ref @wte.w : tensor<128x16xf32>
    %3 = mt.embedding %arg0, %2 : tensor<1x4xi32>, tensor<128x16xf32> -> tensor<1x4x16xf32>
    %4 = mt.param_ref @e0.iln.w : tensor<16xf32>
    %5 = mt.param_ref @e0.iln.b : tensor<16xf32>
    %6 = mt.layer_norm %3, %4, %5 {epsilon = 1.000000e-05 : f64} : tensor<1x4x16xf32>, tensor<16xf32>
    %7 = mt.param_ref @e0.sa.qkv.w : tensor<48x16xf32>
    %8 = mt.linear %6, %7 : tensor<1x4x16xf32>, tensor<48x16xf32> -> tensor<1x4x48xf32>
    %query, %key, %value = mt.split_qkv %8 {num_heads = 2 : i64, num_query_groups = 2 : i64} : tensor<1x4x48xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %9 = mt.attention  padding %query, %key, %value mask(%arg2 : tensor<1x4xi32>) bias(%1 : tensor<2x4x4xf32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
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
    %26 = mt.param_ref @dec.rpb.w : tensor<32x2xf32>
    %27 = mt.relative_position_bias %26 {bidirectional = false, max_distance = 128 : i64, num_buckets = 32 : i64} : tensor<32x2xf32> -> tensor<2x2x2xf32>
    %28 = mt.param_ref @wte.w : tensor<128x16xf32>
    %29 = mt.embedding %arg1, %28 : tensor<1x2xi32>, tensor<128x16xf32> -> tensor<1x2x16xf32>
    %30 = mt.param_ref @d0.iln.w : tensor<16xf32>
    %31 = mt.param_ref @d0.iln.b : tensor<16xf32>
    %32 = mt.layer_norm %29, %30, %31 {epsilon = 1.000000e-05 : f64} : tensor<1x2x16xf32>, tensor<16xf32>
    %33 = mt.param_ref @d0.sa.qkv.w : tensor<48x16xf32>
    %34 = mt.linear %32, %33 : tensor<1x2x16xf32>, tensor<48x16xf32> -> tensor<1x2x48xf32>
    %query_0, %key_1, %value_2 = mt.split_qkv %34 {num_heads = 2 : i64, num_query_groups = 2 : i64} : tensor<1x2x48xf32> -> tensor<1x2x2x8xf32>, tensor<1x2x2x8xf32>, tensor<1x2x2x8xf32>
    %35 = mt.attention  causal %query_0, %key_1, %value_2 bias(%27 : tensor<2x2x2xf32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x2x2x8xf32>, tensor<1x2x2x8xf32>, tensor<1x2x2x8xf32>
    %36 = mt.merge_heads %35 : tensor<1x2x2x8xf32> -> tensor<1x2x16xf32>
    %37 = mt.param_ref @d0.sa.proj.w : tensor<16x16xf32>
    %38 = mt.linear %36, %37 : tensor<1x2x16xf32>, tensor<16x16xf32> -> tensor<1x2x16xf32>
    %39 = mt.add %29, %38 : tensor<1x2x16xf32>
    %40 = mt.param_ref @d0.cln.w : tensor<16xf32>
    %41 = mt.param_ref @d0.cln.b : tensor<16xf32>
    %42 = mt.layer_norm %39, %40, %41 {epsilon = 1.000000e-05 : f64} : tensor<1x2x16xf32>, tensor<16xf32>
    %43 = mt.param_ref @d0.ca.q.w : tensor<16x16xf32>
    %44 = mt.linear %42, %43 : tensor<1x2x16xf32>, tensor<16x16xf32> -> tensor<1x2x16xf32>
    %45 = mt.param_ref @d0.ca.kv.w : tensor<32x16xf32>
    %46 = mt.linear %25, %45 : tensor<1x4x16xf32>, tensor<32x16xf32> -> tensor<1x4x32xf32>
    %47 = mt.split_heads %44 : tensor<1x2x16xf32> -> tensor<1x2x2x8xf32>
    %key_3, %value_4 = mt.split_kv %46 {num_query_groups = 2 : i64} : tensor<1x4x32xf32> -> tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %48 = mt.attention  padding %47, %key_3, %value_4 mask(%arg2 : tensor<1x4xi32>) {num_heads = 2 : i64, num_query_groups = 2 : i64, softmax_scale = 0.35355339059327373 : f64} : tensor<1x2x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
    %49 = mt.merge_heads %48 : tensor<1x2x2x8xf32> -> tensor<1x2x16xf32>
    %50 = mt.param_ref @d0.ca.proj.w : tensor<16x16xf32>
    %51 = mt.linear %49, %50 : tensor<1x2x16xf32>, tensor<16x16xf32> -> tensor<1x2x16xf32>
    %52 = mt.add %39, %51 : tensor<1x2x16xf32>
    %53 = mt.param_ref @d0.mln.w : tensor<16xf32>
    %54 = mt.param_ref @d0.mln.b : tensor<16xf32>
    %55 = mt.layer_norm %52, %53, %54 {epsilon = 1.000000e-05 : f64} : tensor<1x2x16xf32>, tensor<16xf32>
    %56 = mt.param_ref @d0.mlp.fc1.w : tensor<64x16xf32>
    %57 = mt.linear %55, %56 : tensor<1x2x16xf32>, tensor<64x16xf32> -> tensor<1x2x64xf32>
    %58 = mt.gelu %57 : tensor<1x2x64xf32>
    %59 = mt.param_ref @d0.mlp.fc2.w : tensor<16x64xf32>
    %60 = mt.linear %58, %59 : tensor<1x2x64xf32>, tensor<16x64xf32> -> tensor<1x2x16xf32>
    %61 = mt.add %52, %60 : tensor<1x2x16xf32>
    %62 = mt.param_ref @dec.fln.w : tensor<16xf32>
    %63 = mt.param_ref @dec.fln.b : tensor<16xf32>
    %64 = mt.layer_norm %61, %62, %63 {epsilon = 1.000000e-05 : f64} : tensor<1x2x16xf32>, tensor<16xf32>
    %65 = mt.param_ref @wte.w : tensor<128x16xf32>
    %66 = mt.param_ref @lm_head.output_layer.b : tensor<128xf32>
    %67 = mt.linear %64, %65, %66 : tensor<1x2x16xf32>, tensor<128x16xf32>, tensor<128xf32> -> tensor<1x2x128xf32>
    %68 = mt.cross_entropy %67, %arg3, %arg4 : tensor<1x2x128xf32>, tensor<1x2xi32>, tensor<1x2xf32> -> tensor<f32>
    return %68 : tensor<f32>
  }
}
