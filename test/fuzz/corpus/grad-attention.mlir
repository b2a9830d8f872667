module {
  func.func @attn(%do: tensor<1x2x4x2xf32>, %o: tensor<1x2x4x2xf32>, %q: tensor<1x2x4x2xf32>, %k: tensor<1x2x2x2xf32>, %m: tensor<1x2xi32>, %b: tensor<4x2x2xf32>) -> (tensor<1x2x16xf32>, tensor<1x2x8xf32>, tensor<8x4xf32>) {
    %dq, %dk, %dv, %db = mt.attention_grad padding %do, %o, %q, %k, %k mask(%m : tensor<1x2xi32>) bias(%b : tensor<4x2x2xf32>) {num_heads = 4 : i64, num_query_groups = 2 : i64, softmax_scale = 0.5 : f64, dropout = 0.1 : f64, rng_stream = 3 : i64} : tensor<1x2x4x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32> -> tensor<1x2x4x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<4x2x2xf32>
    %rq = mt.rope_grad %dq {base = 1.0e4 : f64, rotary_dim = 2 : i64} : tensor<1x2x4x2xf32>
    %qkv = mt.merge_qkv %rq, %dk, %dv : tensor<1x2x4x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32> -> tensor<1x2x16xf32>
    %kv = mt.merge_kv %dk, %dv : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32> -> tensor<1x2x8xf32>
    %t = mt.relative_position_bias_grad %db {bidirectional = true, max_distance = 16 : i64, num_buckets = 8 : i64} : tensor<4x2x2xf32> -> tensor<8x4xf32>
    return %qkv, %kv, %t : tensor<1x2x16xf32>, tensor<1x2x8xf32>, tensor<8x4xf32>
  }
  func.func @misc(%dl: tensor<f32>, %logits: tensor<2x8xf32>, %labels: tensor<2xi64>, %ids: tensor<2x3xi32>, %dy: tensor<2x3x4xf32>, %dp: tensor<2x4xf32>, %w: tensor<4x4xf32>) -> (tensor<2x8xf32>, tensor<16x4xf32>, tensor<5x4xf32>, tensor<4xf32>) {
    %dlogits = mt.cross_entropy_grad %dl, %logits, %labels : tensor<f32>, tensor<2x8xf32>, tensor<2xi64>
    %dt = mt.embedding_grad %ids, %dy : tensor<2x3xi32>, tensor<2x3x4xf32> -> tensor<16x4xf32>
    %dpos = mt.position_embedding_grad %dy : tensor<2x3x4xf32> -> tensor<5x4xf32>
    %dx, %dw, %db = mt.pooler_grad %dp, %dp, %dy, %w : tensor<2x4xf32>, tensor<2x3x4xf32>, tensor<4x4xf32> -> tensor<4xf32>
    return %dlogits, %dt, %dpos, %db : tensor<2x8xf32>, tensor<16x4xf32>, tensor<5x4xf32>, tensor<4xf32>
  }
}
