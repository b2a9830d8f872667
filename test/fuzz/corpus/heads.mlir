module {
  func.func @qkv(%x: tensor<1x4x24xf32>) -> (tensor<1x4x4x3xf32>, tensor<1x4x2x3xf32>, tensor<1x4x2x3xf32>) {
    %q, %k, %v = mt.split_qkv %x {num_heads = 4 : i64, num_query_groups = 2 : i64} : tensor<1x4x24xf32> -> tensor<1x4x4x3xf32>, tensor<1x4x2x3xf32>, tensor<1x4x2x3xf32>
    return %q, %k, %v : tensor<1x4x4x3xf32>, tensor<1x4x2x3xf32>, tensor<1x4x2x3xf32>
  }
  func.func @kv(%x: tensor<1x4x12xbf16>) -> (tensor<1x4x2x3xbf16>, tensor<1x4x2x3xbf16>) {
    %k, %v = mt.split_kv %x {num_query_groups = 2 : i64} : tensor<1x4x12xbf16> -> tensor<1x4x2x3xbf16>, tensor<1x4x2x3xbf16>
    return %k, %v : tensor<1x4x2x3xbf16>, tensor<1x4x2x3xbf16>
  }
  func.func @views(%x: tensor<1x4x12xf32>) -> tensor<1x4x12xf32> {
    %h = mt.split_heads %x : tensor<1x4x12xf32> -> tensor<1x4x3x4xf32>
    %m = mt.merge_heads %h : tensor<1x4x3x4xf32> -> tensor<1x4x12xf32>
    return %m : tensor<1x4x12xf32>
  }
}
